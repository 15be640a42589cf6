"""tools/plot_log.py: a PNG from a training log; one-line errors for bad input."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

from mimickit.learning.logger import TxtLogger  # noqa: E402
from tools.plot_log import main  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_log(folder):
    logger = TxtLogger(str(folder))
    for i in range(1, 6):
        logger.log({"iteration": i, "samples": 100 * i, "train_return": 0.5 * i, "test_return": float(i),
                    "actor_loss": 0.1 / i, "critic_loss": 1.0 / i}, step=100 * i)
    logger.close()
    return folder / "log.txt"


def test_script_writes_png_next_to_the_log(tmp_path):
    log = write_log(tmp_path)
    result = subprocess.run([sys.executable, os.path.join(REPO, "tools", "plot_log.py"), str(log)],
                            capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    png = tmp_path / "log.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
    assert "train_return" in result.stdout and "critic_loss" in result.stdout


def test_two_logs_and_chosen_columns(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    out = tmp_path / "cmp.png"
    assert main([str(write_log(tmp_path / "a")), str(write_log(tmp_path / "b")), "-o", str(out),
                 "--x", "iteration", "--columns", "test_return"]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_unknown_column_or_missing_log_is_one_error_line(tmp_path, capsys):
    log = write_log(tmp_path)
    assert main([str(log), "--columns", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err and str(log) in err
    assert main([str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
