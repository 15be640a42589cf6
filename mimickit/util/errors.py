"""The one exception type for user mistakes.

A bad flag, a bad YAML key, a missing or malformed file, a motion that does not fit the
character: raise :class:`MimicKitError` with a message that names the flag, key or file
and what was expected. ``run.py`` prints it as one line on stderr and exits with code 2.
Programming errors use ordinary exceptions and keep their traceback.
"""
from __future__ import annotations


class MimicKitError(Exception):
    """A user mistake, reported as one line without a traceback."""


def require_file(path: str, what: str) -> str:
    """Return ``path`` if it is an existing file, else raise naming ``what`` it should be."""
    import os
    if not os.path.isfile(path):
        raise MimicKitError("{} not found: {}".format(what, path))
    return path


def one_line(text: str) -> str:
    """``text`` on one line: its lines stripped and joined by spaces (for a library's multi-line message).

    MuJoCo's XML errors end with the place in the file (``Line number=5``,
    ``Element 'geom', line 5``) on a line of its own: this keeps it.
    """
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())
