"""Plot learning curves from training logs (``log.txt``) into a PNG.

Usage::

    python tools/plot_log.py output/log.txt                  # -> output/log.png
    python tools/plot_log.py runs/a/log.txt runs/b/log.txt -o compare.png --x wall_time \\
        --columns train_return test_return critic_loss

One panel per column, one line per log (labelled by the log's folder), against
``--x`` (default ``samples``). Needs matplotlib: ``pip install -e ".[plot]"``.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Dict, List, Optional, Sequence

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mimickit.learning.logger import read_txt_log  # noqa: E402
from mimickit.util.errors import MimicKitError  # noqa: E402

DEFAULT_COLUMNS = ("train_return", "test_return", "train_ep_len", "test_ep_len", "actor_loss", "critic_loss",
                   "clip_frac", "action_std")


def plot_logs(log_files: Sequence[str], out_file: str, x: str = "samples",
              columns: Optional[Sequence[str]] = None) -> List[str]:
    """Write a PNG of ``columns`` against ``x`` for every log; return the columns plotted.

    ``columns=None`` plots the :data:`DEFAULT_COLUMNS` that the first log holds.

    Raises:
        MimicKitError: when a log is missing or malformed, or lacks ``x`` or a requested
            column; when matplotlib is not installed.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MimicKitError("plot_log needs matplotlib (pip install -e \".[plot]\")")
    logs = {}  # type: Dict[str, Dict[str, List[float]]]
    for path in log_files:
        logs[path] = read_txt_log(path)
    first = logs[log_files[0]]
    if columns is None:
        columns = [c for c in DEFAULT_COLUMNS if c in first]
    for path, log in logs.items():
        for name in [x] + list(columns):
            if name not in log:
                raise MimicKitError("{}: no column '{}' (columns: {})".format(path, name, ", ".join(log)))
    if not columns:
        raise MimicKitError("{}: none of the default columns ({}); choose some with --columns".format(
            log_files[0], ", ".join(DEFAULT_COLUMNS)))

    num_cols = min(2, len(columns))
    num_rows = int(math.ceil(len(columns) / num_cols))
    fig, axes = plt.subplots(num_rows, num_cols, figsize=(6 * num_cols, 3.2 * num_rows), squeeze=False)
    for ax, name in zip(axes.flat, columns):
        for path, log in logs.items():
            label = os.path.basename(os.path.dirname(os.path.abspath(path))) or path
            ax.plot(log[x], log[name], label=label)
        ax.set_title(name)
        ax.set_xlabel(x)
        ax.grid(True, alpha=0.3)
        if len(logs) > 1:
            ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(columns):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return list(columns)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line; returns 0, or 2 after printing one ``error: ...`` line."""
    parser = argparse.ArgumentParser(description="Plot learning curves from MimicKit log.txt files.")
    parser.add_argument("logs", nargs="+", help="log.txt files")
    parser.add_argument("-o", "--out", help="PNG to write (default: log.png next to the first log)")
    parser.add_argument("--x", default="samples", help="column on the x axis (default: samples)")
    parser.add_argument("--columns", nargs="+", help="columns to plot (default: returns, lengths, losses)")
    args = parser.parse_args(argv)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.logs[0])), "log.png")
    try:
        plotted = plot_logs(args.logs, out, args.x, args.columns)
    except MimicKitError as e:
        print("error: " + " ".join(str(e).split("\n")), file=sys.stderr)
        return 2
    print("wrote {} ({})".format(out, ", ".join(plotted)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
