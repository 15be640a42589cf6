"""Reading pickled motion files without running code from them.

A pickle can name any importable callable and call it while loading (``os.system``
included), so motion files from the internet are read with :class:`RestrictedUnpickler`,
which admits only numpy array reconstruction and plain containers. ``.npy`` files holding
a pickled object (IsaacGymEnvs AMP motions) are opened with ``numpy.lib.format`` to read
the header; the pickled payload then goes through the same unpickler, never through
``np.load(allow_pickle=True)``.
"""
from __future__ import annotations

import collections
import importlib
import io
import pickle
from typing import Any, Callable, Dict, Tuple

import numpy as np

from mimickit.util.errors import MimicKitError, require_file


def _numpy_multiarray(name: str) -> Callable[[], Any]:
    """Resolve ``numpy.{_core,core}.multiarray.<name>`` without touching numpy's deprecated alias."""
    def resolve():
        for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
            try:
                return getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError):
                continue
        raise AttributeError(name)
    return resolve


# (module, name) as written in the pickle -> a thunk returning the object to use.
_ALLOWED: Dict[Tuple[str, str], Callable[[], Any]] = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_multiarray("_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_multiarray("_reconstruct"),
    ("numpy.core.multiarray", "scalar"): _numpy_multiarray("scalar"),
    ("numpy._core.multiarray", "scalar"): _numpy_multiarray("scalar"),
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("builtins", "dict"): lambda: dict,
    ("builtins", "list"): lambda: list,
    ("builtins", "tuple"): lambda: tuple,
    ("collections", "OrderedDict"): lambda: collections.OrderedDict,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits only numpy arrays, numpy scalars and plain containers.

    Args:
        file: binary stream positioned at the pickle.
        source: the file name, for error messages.

    Raises (from :meth:`load`):
        MimicKitError: naming ``source`` and the refused ``module.name`` when the pickle
            references any other class or function.
    """

    def __init__(self, file: io.BufferedIOBase, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        thunk = _ALLOWED.get((module, name))
        if thunk is None:
            raise MimicKitError("{}: refusing to unpickle '{}.{}' (only numpy arrays and plain "
                                "containers are allowed in a motion file)".format(self.source, module, name))
        return thunk()


_LOAD_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                IndexError, KeyError, ImportError, UnicodeDecodeError)


def restricted_load(stream: io.BufferedIOBase, source: str) -> Any:
    """Unpickle one object from ``stream`` with :class:`RestrictedUnpickler`.

    Raises:
        MimicKitError: on a refused class or a malformed pickle (naming ``source``).
    """
    try:
        return RestrictedUnpickler(stream, source).load()
    except MimicKitError:
        raise
    except _LOAD_ERRORS as e:
        raise MimicKitError("{}: not a readable pickle ({}: {})".format(source, type(e).__name__, e))


def load_pickle(path: str) -> Any:
    """Unpickle the object in file ``path`` (a MimicKit ``.pkl`` motion) with the restricted unpickler.

    Raises:
        MimicKitError: file missing, refused class or malformed pickle.
    """
    require_file(path, "motion file")
    with open(path, "rb") as f:
        return restricted_load(f, path)


def load_npy_object(path: str) -> Any:
    """Read an ``.npy`` file written by ``np.save`` of a Python object (e.g. a dict).

    The header is read with ``numpy.lib.format``; the pickled payload (a 0-d object
    array) is unpickled with :class:`RestrictedUnpickler` and its single item returned.

    Raises:
        MimicKitError: file missing, not an ``.npy`` file, a plain numeric array instead of
            a pickled object, a refused class or a malformed payload.
    """
    require_file(path, "motion file")
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise MimicKitError("{}: unsupported .npy format version {}".format(path, version))
        except ValueError as e:
            raise MimicKitError("{}: not an .npy file ({})".format(path, e))
        if not dtype.hasobject:
            raise MimicKitError("{}: holds a plain {} array of shape {}; expected a pickled motion "
                                "dict (IsaacGymEnvs SkeletonMotion)".format(path, dtype, shape))
        obj = restricted_load(f, path)
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject and obj.shape == ():
        return obj.item()
    return obj
