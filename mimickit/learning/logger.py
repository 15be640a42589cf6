"""Training logs, selected by the ``--logger`` name, and the console progress line.

- ``txt``: ``<out_dir>/log.txt``, a header row of column names then one row per output
  iteration, columns separated by spaces (read it back with :func:`read_txt_log`).
- ``tb``: TensorBoard event files in ``out_dir`` (``tensorboard --logdir <out_dir>``).
- ``wandb``: a Weights & Biases run with its files under ``out_dir``; set
  ``WANDB_MODE=offline`` to log without an account or network.

Every logger takes rows ``{column: number}``; the agent writes the same columns each time.
"""
from __future__ import annotations

import abc
import math
import os
import sys
import time
from typing import Any, Dict, List, Optional

from tqdm import tqdm

from mimickit.util.atomic_file import atomic_write
from mimickit.util.errors import MimicKitError

LOG_FILE = "log.txt"
PLAIN_PERIOD_S = 60.0  # s between progress lines when not on a terminal


class Logger(abc.ABC):
    """Writes one row of numbers per output iteration."""

    @abc.abstractmethod
    def log(self, row: Dict[str, float], step: int) -> None:
        """Write ``row`` (column name -> value) at ``step`` (environment samples so far)."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Flush and release files. Safe to call twice; the default does nothing."""


class NullLogger(Logger):
    """Writes nothing: the logger of every rank but 0 in a distributed run."""

    def log(self, row: Dict[str, float], step: int) -> None:
        """Drop ``row``."""


def _format_value(value: float) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return "{:.7g}".format(value)


class TxtLogger(Logger):
    """``<out_dir>/log.txt``: space-separated columns under a header row of their names.

    The columns are those of the first row written (names must not contain spaces); later
    rows are written in the same order, a missing value as ``nan``. With ``append`` and an
    existing file (a resumed run), rows are appended under the file's own header.

    ``last_iteration`` (a resumed run: its checkpoint's iteration) drops the rows of later
    iterations first, written by a run that was killed after logging but before saving.

    Raises:
        MimicKitError: when the file cannot be opened.
    """

    def __init__(self, out_dir: str, append: bool = False, last_iteration: Optional[int] = None):
        self.path = os.path.join(out_dir, LOG_FILE)
        self._columns: Optional[List[str]] = None
        if append and os.path.isfile(self.path):
            with open(self.path, "r") as f:
                lines = f.read().splitlines(keepends=True)
            header = lines[0].split() if lines else []
            self._columns = header or None
            if self._columns and last_iteration is not None and "iteration" in self._columns:
                _keep_rows_up_to(self.path, lines, self._columns.index("iteration"), last_iteration)
        self._widths = [max(len(c), 12) for c in self._columns or []]
        mode = "a" if self._columns else "w"
        try:
            self._file: Any = open(self.path, mode)
        except OSError as e:
            raise MimicKitError("cannot write the training log {}: {}".format(self.path, e.strerror)) from e

    def log(self, row: Dict[str, float], step: int) -> None:
        """Append ``row`` (``step`` is not written); the first row also writes the header."""
        if self._columns is None:
            self._columns = list(row)
            self._widths = [max(len(c), 12) for c in self._columns]
            self._file.write(" ".join(c.ljust(w) for c, w in zip(self._columns, self._widths)).rstrip() + "\n")
        cells = [_format_value(row.get(c, float("nan"))) for c in self._columns]
        self._file.write(" ".join(v.ljust(w) for v, w in zip(cells, self._widths)).rstrip() + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file. Safe to call twice."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _keep_rows_up_to(path: str, lines: List[str], column: int, last_iteration: int) -> None:
    """Rewrite ``path`` (its ``lines``, header first) without the rows whose ``column`` exceeds ``last_iteration``."""
    kept = [lines[0]]
    for line in lines[1:]:
        cells = line.split()
        try:
            if cells and float(cells[column]) > last_iteration:
                continue
        except (IndexError, ValueError):
            pass
        kept.append(line)
    if len(kept) < len(lines):
        with atomic_write(path, "w") as f:
            f.writelines(kept)


def read_txt_log(path: str) -> Dict[str, List[float]]:
    """Columns of a ``log.txt`` written by :class:`TxtLogger`: name -> values in row order.

    Raises:
        MimicKitError: naming ``path`` when it is missing, empty, or a row has another
            number of cells than the header or a cell that is not a number.
    """
    if not os.path.isfile(path):
        raise MimicKitError("log file not found: {}".format(path))
    with open(path, "r") as f:
        lines = [line.split() for line in f.read().splitlines() if line.strip()]
    if not lines:
        raise MimicKitError("{}: empty log file (expected a header row of column names)".format(path))
    header = lines[0]
    columns: Dict[str, List[float]] = {name: [] for name in header}
    for line_no, cells in enumerate(lines[1:], start=2):
        if len(cells) != len(header):
            raise MimicKitError("{} line {}: {} values for {} columns".format(path, line_no, len(cells), len(header)))
        for name, cell in zip(header, cells):
            try:
                columns[name].append(float(cell))
            except ValueError as e:
                raise MimicKitError("{} line {}: column '{}' holds '{}', expected a number".format(
                    path, line_no, name, cell)) from e
    return columns


class TensorBoardLogger(Logger):
    """TensorBoard scalars in ``out_dir``, one per column, against environment samples."""

    def __init__(self, out_dir: str):
        from torch.utils.tensorboard import SummaryWriter
        self._writer: Any = SummaryWriter(log_dir=out_dir)

    def log(self, row: Dict[str, float], step: int) -> None:
        """One scalar per column at ``step``, then flush."""
        for name, value in row.items():
            self._writer.add_scalar(name, value, global_step=step)
        self._writer.flush()

    def close(self) -> None:
        """Close the event writer. Safe to call twice."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class WandbLogger(Logger):
    """A Weights & Biases run (project ``$WANDB_PROJECT``, default ``mimickit``) writing under ``out_dir``.

    ``wandb`` is imported here, not at start-up; ``WANDB_MODE=offline`` keeps the run local.

    Raises:
        MimicKitError: when the ``wandb`` package is not installed (with the install command).
    """

    def __init__(self, out_dir: str, config: Optional[Dict[str, Any]] = None):
        try:
            import wandb
        except ImportError as e:
            raise MimicKitError("--logger wandb: the wandb package is not installed "
                                "(pip install -e \".[wandb]\")") from e
        self._run: Any = wandb.init(project=os.environ.get("WANDB_PROJECT", "mimickit"), dir=out_dir,
                                    config=config or {})

    def log(self, row: Dict[str, float], step: int) -> None:
        """Log ``row`` to the run at ``step``."""
        self._run.log(dict(row), step=step)

    def close(self) -> None:
        """Finish the run. Safe to call twice."""
        if self._run is not None:
            self._run.finish()
            self._run = None


LOGGERS = ("txt", "tb", "wandb")


def build_logger(name: str, out_dir: str, append: bool = False,
                 config: Optional[Dict[str, Any]] = None, last_iteration: Optional[int] = None) -> Logger:
    """The logger called ``name`` (one of :data:`LOGGERS`) writing into ``out_dir``.

    Args:
        name: ``txt``, ``tb`` or ``wandb``.
        out_dir: the run's output folder; created when missing.
        append: continue an existing ``log.txt`` (a resumed run); only ``txt`` uses it.
        config: run settings recorded by ``wandb``.
        last_iteration: with ``append``, ``txt`` drops the rows logged after this iteration.

    Raises:
        MimicKitError: on an unknown name (listing the known ones) or a missing package.
    """
    os.makedirs(out_dir, exist_ok=True)
    if name == "txt":
        return TxtLogger(out_dir, append=append, last_iteration=last_iteration)
    if name == "tb":
        return TensorBoardLogger(out_dir)
    if name == "wandb":
        return WandbLogger(out_dir, config)
    raise MimicKitError("--logger: unknown logger '{}' (expected one of: {})".format(name, ", ".join(LOGGERS)))


def _fmt(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else "{:.4g}".format(value)


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return "{}:{:02d}:{:02d}".format(seconds // 3600, seconds // 60 % 60, seconds % 60)


class ProgressLine:
    """Console progress of a training run.

    On a terminal, a tqdm bar over ``max_samples`` shows samples, samples/s, ETA and the
    mean training return and episode length. Without a terminal (output to a file), a
    plain line is printed after the first iteration and then every :data:`PLAIN_PERIOD_S`
    seconds. At each output iteration :meth:`summary` prints one line:
    ``iter 50 | samples 32000/1000000 | 1.2e+04 samples/s | return 12.3 | ep_len 20 | style_reward 0.8 |
    test return 15 | ETA 0:01:20``.

    Args:
        max_samples: samples at which training stops.
        start_samples: samples already done (a resumed run).
        enabled: false: print nothing (the ranks but 0 of a distributed run).
    """

    def __init__(self, max_samples: int, start_samples: int, enabled: bool = True):
        self.max_samples = int(max_samples)
        self._samples = start_samples
        self._enabled = enabled
        self._bar = tqdm(total=self.max_samples, initial=start_samples, unit="samples", unit_scale=True,
                         dynamic_ncols=True, disable=None if enabled else True, leave=False, file=sys.stderr)
        self._start = self._last_plain = time.perf_counter()
        self._start_samples = start_samples

    def update(self, num_samples: int, mean_return: float, mean_ep_len: float,
               extras: Optional[Dict[str, float]] = None) -> None:
        """Advance by ``num_samples``; show the mean return, episode length and ``extras`` (e.g. the style reward)."""
        if not self._enabled:
            return
        text = " | ".join(["return {}".format(_fmt(mean_return)), "ep_len {}".format(_fmt(mean_ep_len))]
                          + ["{} {}".format(k, _fmt(v)) for k, v in (extras or {}).items()])
        self._bar.set_postfix_str(text, refresh=False)
        self._bar.update(num_samples)
        first = self._samples == self._start_samples
        self._samples += num_samples
        now = time.perf_counter()
        if self._bar.disable and (first or now - self._last_plain >= PLAIN_PERIOD_S):
            self._last_plain = now
            rate = (self._samples - self._start_samples) / max(now - self._start, 1e-9)
            tqdm.write("samples {}/{} | {} samples/s | {}".format(self._samples, self.max_samples, _fmt(rate), text),
                       file=sys.stdout)

    def summary(self, iteration: int, samples: int, samples_per_s: float, mean_return: float,
                mean_ep_len: float, test_return: Optional[float], extras: Optional[Dict[str, float]] = None) -> None:
        """Print the one-line summary of an output iteration on stdout."""
        if not self._enabled:
            return
        eta = (self.max_samples - samples) / samples_per_s if samples_per_s > 0 else float("inf")
        parts = ["iter {}".format(iteration), "samples {}/{}".format(samples, self.max_samples),
                 "{} samples/s".format(_fmt(samples_per_s)), "return {}".format(_fmt(mean_return)),
                 "ep_len {}".format(_fmt(mean_ep_len))]
        parts += ["{} {}".format(k, _fmt(v)) for k, v in (extras or {}).items()]
        if test_return is not None:
            parts.append("test return {}".format(_fmt(test_return)))
        parts.append("ETA {}".format(_fmt_duration(max(eta, 0.0))))
        tqdm.write(" | ".join(parts), file=sys.stdout)

    def close(self) -> None:
        """Remove the bar."""
        self._bar.close()
