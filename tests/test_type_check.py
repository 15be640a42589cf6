"""The package type-checks with mypy at zero findings, the Isaac Gym engine against the isaacgym-stubs package.

mypy runs over all of ``mimickit/`` with the settings of ``[tool.mypy]`` in pyproject.toml
(torch, mujoco and other untyped packages read as Any). Isaac Gym cannot run here, so this
is also the check that every ``gymapi`` call exists and matches its signature.
isaacgym-stubs 1.x cannot be read by mypy as installed (a property named ``lambda``, no
``__init__.pyi``); the test copies its ``gymapi.pyi`` into a stub package ``isaacgym``
with that one name changed and puts it first on ``MYPYPATH``. Missing stubs or mypy fail
the test.
"""
import importlib.metadata
import re
from pathlib import Path

import pytest
from mypy import api

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "mimickit"

BROKEN = '''\
from isaacgym import gymapi
gym = gymapi.acquire_gym()
sim = gym.create_sim(0, 0, gymapi.SIM_PHYSX, gymapi.SimParams())
gym.refresh_dof_state_tensor()
gym.set_dof_state_tensor_indexd(sim)
gym.create_env(sim, gymapi.Vec3(), gymapi.Vec3(), "4")
reveal_type(gym.acquire_dof_state_tensor(sim))
'''


@pytest.fixture(scope="module")
def stub_path(tmp_path_factory):
    """A directory holding the package ``isaacgym`` made from the installed isaacgym-stubs."""
    try:
        dist = importlib.metadata.distribution("isaacgym-stubs")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("isaacgym-stubs is not installed: pip install -e \".[dev]\"")
    gymapi = Path(dist.locate_file("isaacgym-stubs/gymapi.pyi"))
    assert gymapi.is_file(), "isaacgym-stubs has no isaacgym-stubs/gymapi.pyi: {}".format(gymapi)
    text, renamed = re.subn(r"\bdef lambda\(", "def lambda_(", gymapi.read_text())
    root = tmp_path_factory.mktemp("stubs")
    package = root / "isaacgym"
    package.mkdir()
    (package / "gymapi.pyi").write_text(text)
    (package / "__init__.pyi").write_text("from . import gymapi as gymapi\n")
    return root


def run_mypy(stub_path, cache_dir, monkeypatch, target):
    monkeypatch.setenv("MYPYPATH", str(stub_path))
    monkeypatch.chdir(REPO)
    stdout, stderr, status = api.run(["--config-file", str(REPO / "pyproject.toml"),
                                      "--cache-dir", str(cache_dir), "--show-error-codes", str(target)])
    return stdout + stderr, status


def test_the_package_type_checks_with_the_isaac_gym_engine_against_isaacgym_stubs(stub_path, tmp_path, monkeypatch):
    output, status = run_mypy(stub_path, tmp_path / "cache", monkeypatch, PACKAGE)
    assert status == 0 and "Success: no issues found" in output, output


def test_mypy_reports_wrong_isaac_gym_calls_through_the_stubs(stub_path, tmp_path, monkeypatch):
    snippet = tmp_path / "broken.py"
    snippet.write_text(BROKEN)
    output, status = run_mypy(stub_path, tmp_path / "cache", monkeypatch, snippet)
    assert status == 1, output
    assert 'broken.py:4: error: Missing positional argument "arg0" in call to "refresh_dof_state_tensor"' in output
    assert 'broken.py:5: error: "Gym" has no attribute "set_dof_state_tensor_indexd"' in output
    assert 'broken.py:6: error: Argument 4 to "create_env" of "Gym" has incompatible type "str"' in output
    assert 'broken.py:7: note: Revealed type is "isaacgym.gymapi.Tensor"' in output  # the stubs, not Any
