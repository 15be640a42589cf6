"""Warp kernels of the ``mujoco_warp`` engine; imported only when that engine is built.

Warp reads the kernel annotations, so ``warp`` is imported at module level here (the
engine module itself imports warp lazily).
"""
from __future__ import annotations

import warp as wp

# MuJoCo's mjMAXVAL: mj_checkPos / mj_checkVel / mj_checkAcc reset an mjData whose qpos, qvel
# or qacc holds a value that is not below it in magnitude (NaN included)
MAX_STATE_VALUE = 1.0e10


# Warp's kernel language types arguments with calls (``wp.array2d(dtype=float)``), which are
# no Python type annotations: mypy rejects them (valid-type), hence one ignore per line.
@wp.kernel
def check_state(qpos: wp.array2d(dtype=float), qvel: wp.array2d(dtype=float),  # type: ignore[valid-type]
                qacc: wp.array2d(dtype=float), bad: wp.array(dtype=bool),  # type: ignore[valid-type]
                failed: wp.array(dtype=int)):  # type: ignore[valid-type]
    """Flag the envs whose state went bad, one thread per env (warp world; launch dim ``nworld``).

    ``bad[w]``: a value of ``qpos`` ``[nworld, nq]``, ``qvel`` ``[nworld, nv]`` or ``qacc``
    ``[nworld, nv]`` is NaN or not below :data:`MAX_STATE_VALUE` in magnitude.
    ``failed[w] = 1`` where bad (left as is elsewhere, so it accumulates until the engine
    clears it).
    """
    w = wp.tid()
    found = int(0)
    for i in range(qpos.shape[1]):
        if not (wp.abs(qpos[w, i]) < MAX_STATE_VALUE):
            found = 1
    for i in range(qvel.shape[1]):
        if not (wp.abs(qvel[w, i]) < MAX_STATE_VALUE):
            found = 1
    for i in range(qacc.shape[1]):
        if not (wp.abs(qacc[w, i]) < MAX_STATE_VALUE):
            found = 1
    bad[w] = found != 0
    if found != 0:
        failed[w] = 1
