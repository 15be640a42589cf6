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
