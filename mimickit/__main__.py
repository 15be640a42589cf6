"""``python -m mimickit ...``: the same as ``python mimickit/run.py ...``."""
from __future__ import annotations

import sys

from mimickit.run import main

sys.exit(main())
