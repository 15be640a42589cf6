"""Command-line flags and arg files for ``run.py``.

Every flag is ``--name value`` (``--name=value`` also works). Flags can also come from an
arg file given with ``--arg_file path``: plain command-line flags, one or more per line,
``#`` starts a comment, blank lines are skipped, values are quoted with shell rules
(``--out_dir "my runs/1"``). A flag given on the command line wins over the same flag in
the arg file. An empty value (``--model_file ""``) clears an optional flag.

The flags, their types, defaults and help live in one place: the fields of
:class:`RunArgs`. Adding a flag is adding a field there.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import shlex
import typing
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mimickit.util.errors import MimicKitError


def _flag(default: Any, help: str, choices: Optional[Tuple[str, ...]] = None,
          min_value: Optional[int] = None) -> Any:
    """Declare one flag: a dataclass field with its help text and checks as metadata."""
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": choices, "min": min_value})


@dataclasses.dataclass
class RunArgs:
    """The flags of ``run.py``, with their defaults. Paths are relative to the working directory."""

    arg_file: Optional[str] = _flag(None, "file of more flags; the command line wins over it")
    mode: str = _flag("train", "what to run (export: write policy.onnx, policy.pt and policy.json to out_dir)",
                      choices=("train", "test", "export"))
    engine_config: Optional[str] = _flag(None, "engine YAML (simulator, timestep), "
                                               "e.g. data/engines/mujoco_engine.yaml")
    env_config: Optional[str] = _flag(None, "environment YAML (character, motion, rewards), under data/envs/")
    agent_config: Optional[str] = _flag(None, "agent YAML (learning algorithm and its settings), under data/agents/")
    num_envs: int = _flag(1, "number of environments simulated in parallel", min_value=1)
    device: str = _flag("cpu", "torch device for tensors and networks: cpu, cuda, cuda:0, ...")
    visualize: bool = _flag(False, "open a viewer window")
    video: bool = _flag(False, "record <out_dir>/video.mp4")
    logger: str = _flag("txt", "training log format", choices=("txt", "tb", "wandb"))
    out_dir: str = _flag("output/", "folder for the model, logs, config copies and video")
    model_file: Optional[str] = _flag(None, "model to load (test, export: the policy; train: a warm start)")
    motion_file: Optional[str] = _flag(None, "motion or motion list; overrides the env config's motion_file")
    char_file: Optional[str] = _flag(None, "character MJCF or URDF; overrides the env config's char_file "
                                           "(e.g. the vendor's file of the robot)")
    max_samples: Optional[int] = _flag(None, "train: stop after this many environment steps "
                                             "(default: the agent's own limit)", min_value=1)
    rand_seed: Optional[int] = _flag(None, "seed for torch, numpy and random (default: not seeded)")
    test_episodes: int = _flag(10, "test: number of episodes to run", min_value=1)
    resume: bool = _flag(False, "train: continue from --model_file, or <out_dir>/model.pt when not given")
    overwrite: bool = _flag(False, "train: replace the run in out_dir (model.pt, log.txt, int_models/); "
                                   "test, export: write into a training run's out_dir itself")
    random_policy: bool = _flag(False, "test: run a learning agent without --model_file (its untrained policy)")
    num_workers: int = _flag(1, "train, test: processes on this machine, each with its own --num_envs (launched "
                                "with torchrun; under torchrun itself its --nproc_per_node counts instead)",
                             min_value=1)
    perturbations: Optional[str] = _flag(None, "test: a perturbation set, a YAML of named domain_rand blocks (e.g. "
                                               "data/perturbations/quadruped.yaml): --test_episodes under each, "
                                               "instead of the env's own randomisation, all in eval.json")
    latent_seed: Optional[int] = _flag(None, "test, latent-conditioned agents (ASE): every env acts under the one "
                                             "latent drawn from this seed (default: random latents)")


_FIELDS = {f.name: f for f in dataclasses.fields(RunArgs)}
_TYPES = typing.get_type_hints(RunArgs)


def flag_names() -> List[str]:
    """The names of all flags, without the leading ``--``, in declaration order."""
    return list(_FIELDS)


def _base_type(name: str) -> Tuple[type, bool]:
    """(value type, whether the flag is Optional) of flag ``name``."""
    tp = _TYPES[name]
    args = getattr(tp, "__args__", ())
    if getattr(tp, "__origin__", None) is typing.Union and type(None) in args:
        return [a for a in args if a is not type(None)][0], True
    return tp, False


def _expected(name: str) -> str:
    """Words describing the values flag ``name`` accepts, for error messages and help."""
    meta = _FIELDS[name].metadata
    tp, _ = _base_type(name)
    if meta["choices"]:
        return "one of: " + ", ".join(meta["choices"])
    if tp is bool:
        return "true or false"
    if tp is int:
        low = meta["min"]
        return "an integer" if low is None else "an integer >= {}".format(low)
    return "a value"


def _convert(name: str, raw: str, where: str) -> Any:
    """Convert the string ``raw`` given for flag ``name`` to the flag's type.

    Raises:
        MimicKitError: naming the flag, the value, ``where`` it was given and what was expected.
    """
    meta = _FIELDS[name].metadata
    tp, optional = _base_type(name)

    def bad() -> MimicKitError:
        return MimicKitError("--{}: expected {}, got '{}' ({})".format(name, _expected(name), raw, where))

    if raw == "":
        if optional:
            return None
        raise bad()
    if tp is bool:
        lowered = raw.lower()
        if lowered not in ("true", "false"):
            raise bad()
        return lowered == "true"
    if tp is int:
        try:
            value = int(raw)
        except ValueError as not_int:
            # Sample counts are often written 1e9; accept that when it is a whole number.
            try:
                as_float = float(raw)
            except ValueError as not_float:
                raise bad() from not_float
            if not math.isfinite(as_float) or not as_float.is_integer():
                raise bad() from not_int
            value = int(as_float)
        if meta["min"] is not None and value < meta["min"]:
            raise bad()
        return value
    if meta["choices"] and raw not in meta["choices"]:
        raise bad()
    return raw


def _unknown_flag(name: str, where: str) -> MimicKitError:
    """The error for a flag that :class:`RunArgs` does not declare, with a close match if any."""
    close = difflib.get_close_matches(name, flag_names(), n=1)
    hint = " (did you mean --{}?)".format(close[0]) if close else ""
    return MimicKitError("unknown flag --{}{} ({}); run with --help for the list".format(name, hint, where))


def _read_arg_file(path: str) -> List[Tuple[str, str]]:
    """Tokens of an arg file, each with where it came from ("file line N").

    Raises:
        MimicKitError: when the file is missing or a line has an unclosed quote.
    """
    try:
        with open(path, "r") as f:
            lines = f.read().splitlines()
    except FileNotFoundError as e:
        raise MimicKitError("--arg_file: file not found: {}".format(path)) from e
    except OSError as e:
        raise MimicKitError("--arg_file: cannot read {}: {}".format(path, e.strerror)) from e
    tokens: List[Tuple[str, str]] = []
    for line_no, line in enumerate(lines, start=1):
        where = "{} line {}".format(path, line_no)
        try:
            words = shlex.split(line, comments=True)
        except ValueError as e:
            raise MimicKitError("{}: {} (values are quoted with shell rules)".format(where, e)) from e
        tokens.extend((w, where) for w in words)
    return tokens


def _parse_tokens(tokens: Sequence[Tuple[str, str]]) -> Dict[str, Tuple[str, str]]:
    """Pair flags with their raw values: ``{name: (raw value, where)}``.

    Raises:
        MimicKitError: on a token that is not a flag, an unknown flag, a flag without a
            value, or a flag given twice in the same source.
    """
    values = {}  # type: Dict[str, Tuple[str, str]]
    i = 0
    while i < len(tokens):
        token, where = tokens[i]
        if not token.startswith("--"):
            raise MimicKitError("expected a flag of the form --name value, got '{}' ({})".format(token, where))
        if "=" in token:
            name, raw = token[2:].split("=", 1)
            i += 1
        else:
            name = token[2:]
            if name not in _FIELDS:
                raise _unknown_flag(name, where)
            if i + 1 >= len(tokens) or tokens[i + 1][0].startswith("--"):
                raise MimicKitError("--{}: missing value, expected {} ({})".format(name, _expected(name), where))
            raw = tokens[i + 1][0]
            i += 2
        if name not in _FIELDS:
            raise _unknown_flag(name, where)
        if name in values:
            raise MimicKitError("--{}: given twice ({} and {})".format(name, values[name][1], where))
        values[name] = (raw, where)
    return values


def parse_args(argv: Sequence[str]) -> RunArgs:
    """Parse command-line flags ``argv`` (without the program name) and the ``--arg_file`` they name.

    Returns:
        The flags, converted to their types; flags given nowhere keep their defaults.

    Raises:
        MimicKitError: on an unknown flag, a missing or bad value, a flag given twice in
            one source, ``--arg_file`` inside an arg file, or a missing arg file; the
            message names the flag (or file) and what was expected.
    """
    command_line = _parse_tokens([(a, "command line") for a in argv])
    from_file = {}  # type: Dict[str, Tuple[str, str]]
    if "arg_file" in command_line:
        raw, where = command_line["arg_file"]
        path = _convert("arg_file", raw, where)
        if path is not None:
            from_file = _parse_tokens(_read_arg_file(path))
            if "arg_file" in from_file:
                raise MimicKitError("--arg_file: not allowed inside an arg file ({})".format(
                    from_file["arg_file"][1]))
    merged = dict(from_file)
    merged.update(command_line)
    return RunArgs(**{name: _convert(name, raw, where) for name, (raw, where) in merged.items()})


def to_arg_lines(args: RunArgs) -> str:
    """An arg file that reproduces ``args``: one ``--name value`` line per flag that is set.

    ``--arg_file`` is left out: its flags are already in ``args``.
    """
    lines = []
    for name in flag_names():
        value = getattr(args, name)
        if name == "arg_file" or value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        lines.append("--{} {}".format(name, shlex.quote(str(value))))
    return "\n".join(lines) + "\n"


def help_text() -> str:
    """The usage message: every flag with its help, accepted values and default."""
    lines = ["usage: python mimickit/run.py [--arg_file FILE] [--name value ...]", "", "flags:"]
    for name in flag_names():
        notes = [] if _base_type(name)[0] is str and not _FIELDS[name].metadata["choices"] else [_expected(name)]
        default = _FIELDS[name].default
        if default is not None:
            notes.append("default: " + (str(default).lower() if isinstance(default, bool) else str(default)))
        extra = " [{}]".format("; ".join(notes)) if notes else ""
        lines.append("  --{:<15} {}{}".format(name, _FIELDS[name].metadata["help"], extra))
    return "\n".join(lines)
