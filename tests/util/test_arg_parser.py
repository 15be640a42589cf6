"""Flags from the command line and arg files: precedence, file syntax, and errors that name the flag."""
import dataclasses
import shlex

import pytest

from mimickit.util.arg_parser import RunArgs, flag_names, help_text, parse_args, to_arg_lines
from mimickit.util.errors import MimicKitError


def write(tmp_path, text, name="args.txt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_are_the_dataclass_defaults_when_no_flag_is_given():
    assert parse_args([]) == RunArgs()


def test_command_line_values_are_converted_to_the_declared_types():
    args = parse_args(["--num_envs", "8", "--visualize", "true", "--video", "FALSE", "--rand_seed", "-3",
                       "--mode", "test", "--device", "cuda:1", "--max_samples", "2e6", "--logger", "tb"])
    assert args.num_envs == 8 and args.visualize is True and args.video is False
    assert args.rand_seed == -3 and args.mode == "test" and args.device == "cuda:1"
    assert args.max_samples == 2_000_000 and isinstance(args.max_samples, int)
    assert args.logger == "tb"


def test_name_equals_value_form_is_the_same_as_name_space_value():
    assert parse_args(["--num_envs=4", "--out_dir=a b"]) == parse_args(["--num_envs", "4", "--out_dir", "a b"])


def test_arg_file_comments_blank_lines_and_several_flags_per_line(tmp_path):
    path = write(tmp_path, "# a comment\n\n--num_envs 3 --device cpu   # trailing comment\n"
                           "   --env_config data/envs/x.yaml\n#--mode test\n")
    args = parse_args(["--arg_file", path])
    assert args.num_envs == 3 and args.device == "cpu" and args.env_config == "data/envs/x.yaml"
    assert args.mode == "train"  # commented out
    assert args.arg_file == path


def test_arg_file_values_follow_shell_quoting(tmp_path):
    path = write(tmp_path, "--out_dir \"runs/with space\" --motion_file 'a # not a comment.npz'\n")
    args = parse_args(["--arg_file", path])
    assert args.out_dir == "runs/with space"
    assert args.motion_file == "a # not a comment.npz"


def test_command_line_wins_over_the_arg_file_whatever_the_order(tmp_path):
    path = write(tmp_path, "--num_envs 3\n--out_dir from_file\n--logger tb\n")
    before = parse_args(["--num_envs", "5", "--arg_file", path])
    after = parse_args(["--arg_file", path, "--num_envs", "5"])
    for args in (before, after):
        assert args.num_envs == 5
        assert args.out_dir == "from_file" and args.logger == "tb"


def test_empty_value_on_command_line_clears_an_optional_flag_from_the_file(tmp_path):
    path = write(tmp_path, "--model_file output/model.pt\n")
    assert parse_args(["--arg_file", path]).model_file == "output/model.pt"
    assert parse_args(["--arg_file", path, "--model_file", ""]).model_file is None


def test_to_arg_lines_round_trips_through_an_arg_file(tmp_path):
    args = parse_args(["--num_envs", "2", "--out_dir", "my runs/a'b", "--visualize", "true", "--rand_seed", "7",
                       "--model_file", "m.pt"])
    path = write(tmp_path, to_arg_lines(args))
    again = parse_args(["--arg_file", path])
    assert dataclasses.replace(again, arg_file=None) == args


def test_help_lists_every_flag():
    text = help_text()
    for name in flag_names():
        assert "--" + name in text


def error_of(argv):
    with pytest.raises(MimicKitError) as info:
        parse_args(argv)
    return str(info.value)


@pytest.mark.parametrize("argv, flag, expected", [
    (["--num_envs", "abc"], "--num_envs", "integer"),
    (["--num_envs", "0"], "--num_envs", ">= 1"),
    (["--num_envs", "1.5"], "--num_envs", "integer"),
    (["--max_samples", "inf"], "--max_samples", "integer"),
    (["--visualize", "maybe"], "--visualize", "true or false"),
    (["--resume", "1"], "--resume", "true or false"),
    (["--mode", "deploy"], "--mode", "train, test, export"),
    (["--logger", "csv"], "--logger", "txt, tb, wandb"),
    (["--device", ""], "--device", "a value"),
])
def test_bad_value_error_names_the_flag_the_value_and_what_was_expected(argv, flag, expected):
    message = error_of(argv)
    assert flag in message and expected in message
    assert "'{}'".format(argv[1]) in message


@pytest.mark.parametrize("argv, flag", [
    (["--num_envs"], "--num_envs"),
    (["--num_envs", "--device", "cpu"], "--num_envs"),
    (["--device", "cpu", "--out_dir"], "--out_dir"),
])
def test_flag_without_value_is_an_error_naming_the_flag(argv, flag):
    message = error_of(argv)
    assert "missing value" in message and message.startswith(flag + ":")


def test_unknown_flag_is_an_error_with_a_close_match():
    message = error_of(["--num_env", "4"])
    assert "unknown flag --num_env " in message and "did you mean --num_envs" in message
    assert "--zzz" in error_of(["--zzz", "1"])


def test_value_without_flag_is_an_error_naming_the_token():
    assert "'stray'" in error_of(["stray"])
    assert "'2'" in error_of(["--num_envs", "1", "2"])


def test_flag_given_twice_in_one_source_is_an_error(tmp_path):
    assert "--num_envs" in error_of(["--num_envs", "1", "--num_envs", "2"])
    path = write(tmp_path, "--num_envs 1\n--num_envs 2\n")
    message = error_of(["--arg_file", path])
    assert "--num_envs" in message and "line 1" in message and "line 2" in message


def test_missing_arg_file_is_an_error_naming_the_flag_and_the_file(tmp_path):
    missing = str(tmp_path / "nope.txt")
    message = error_of(["--arg_file", missing])
    assert "--arg_file" in message and missing in message


def test_errors_in_an_arg_file_name_the_file_and_line(tmp_path):
    path = write(tmp_path, "--num_envs 2\n\n--visualize maybe\n")
    message = error_of(["--arg_file", path])
    assert "--visualize" in message and "{} line 3".format(path) in message
    path = write(tmp_path, "--num_envz 2\n", name="typo.txt")
    message = error_of(["--arg_file", path])
    assert "--num_envz" in message and "--num_envs" in message and path in message


def test_unclosed_quote_in_an_arg_file_names_the_file_and_line(tmp_path):
    path = write(tmp_path, "--num_envs 2\n--out_dir \"unclosed\n")
    message = error_of(["--arg_file", path])
    assert "{} line 2".format(path) in message and "quot" in message


def test_arg_file_inside_an_arg_file_is_an_error(tmp_path):
    inner = write(tmp_path, "--num_envs 2\n", name="inner.txt")
    outer = write(tmp_path, "--arg_file {}\n".format(shlex.quote(inner)), name="outer.txt")
    message = error_of(["--arg_file", outer])
    assert "--arg_file" in message and outer in message
