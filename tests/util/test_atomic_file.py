"""Atomic writes keep the old file on failure and give normal permissions."""
import os

from mimickit.util.atomic_file import atomic_write


def test_atomic_write_replaces_the_file_only_on_success(tmp_path):
    path = tmp_path / "sub" / "model.pt"
    with atomic_write(str(path)) as f:
        f.write(b"first")
    try:
        with atomic_write(str(path)) as f:
            f.write(b"partial")
            raise RuntimeError("crash mid-write")
    except RuntimeError:
        pass
    assert path.read_bytes() == b"first"
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]  # no temporary left
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o666 & ~umask
