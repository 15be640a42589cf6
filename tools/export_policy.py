"""Export a trained policy for deployment: ``run.py --mode export`` under its own name.

    python tools/export_policy.py --arg_file args/deepmimic_humanoid_ppo_args.txt \\
        --model_file output/deepmimic_humanoid/model.pt --out_dir output/export

Takes the flags of ``mimickit/run.py`` (``--mode`` is set to ``export``) and writes
``policy.onnx``, ``policy.pt``, ``policy.json`` and the config copies into ``--out_dir``;
see :mod:`mimickit.learning.export` and the README's "Export and deploy".
"""
from __future__ import annotations

import os
import sys
from typing import List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mimickit.run import main as run_main  # noqa: E402


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``run.py`` with ``argv`` and ``--mode export``; returns its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "-h" in argv or "--help" in argv:
        print(__doc__)
        return 0
    mode = [a for a in argv if a == "--mode" or a.startswith("--mode=")]
    if mode:
        print("error: --mode: tools/export_policy.py always exports; leave --mode out", file=sys.stderr)
        return 2
    return run_main(argv + ["--mode", "export"])


if __name__ == "__main__":
    sys.exit(main())
