"""Every shipped arg file parses, names config files that exist and build their configs' classes, and an HRL
arg file's low-level model is the output of another shipped arg file that its comment names."""
import glob
import os

import pytest

from mimickit.learning.agent_builder import AGENTS
from mimickit.util.arg_parser import parse_args
from mimickit.util.config import load_yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARG_FILES = sorted(glob.glob(os.path.join(REPO, "args", "*.txt")))


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)  # arg files hold paths relative to the repository root


@pytest.mark.parametrize("path", ARG_FILES, ids=os.path.basename)
def test_arg_file_names_existing_configs_of_known_agents(path):
    args = parse_args(["--arg_file", os.path.relpath(path, REPO)])
    for config in (args.engine_config, args.env_config, args.agent_config):
        assert config is not None and os.path.isfile(config), (path, config)
    agent = load_yaml(args.agent_config)
    AGENTS.lookup(agent, args.agent_config)  # a registered agent_name


def test_hrl_arg_files_name_the_arg_file_that_trains_their_low_level():
    out_dirs = {parse_args(["--arg_file", os.path.relpath(p, REPO)]).out_dir: p for p in ARG_FILES}
    hrl_files = []
    for path in ARG_FILES:
        args = parse_args(["--arg_file", os.path.relpath(path, REPO)])
        agent = load_yaml(args.agent_config)
        if agent["agent_name"] != "HRL":
            continue
        hrl_files.append(path)
        llc_dir = os.path.dirname(agent["llc_model_file"])
        assert llc_dir in out_dirs, (path, agent["llc_model_file"])
        maker = os.path.relpath(out_dirs[llc_dir], REPO)
        assert load_yaml(parse_args(["--arg_file", maker]).agent_config)["agent_name"] == "ASE", maker
        assert maker in open(path).read(), (path, maker)  # its comment says which command to run first
    assert len(hrl_files) == 3
