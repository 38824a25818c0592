"""README.md matches the CLI: every `aebench ...` command line in its code blocks and inline code
parses with click (no work is run), every `aebench run` example builds a valid run configuration
(its suite file is the README's own TOML example) whose sampler options fit the data set's default
model, and every flag the README names exists."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import click
import pytest

from aebench.cli import _load_commands, cli

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")
EXAMPLE = README.parent / "examples" / "aebench-example-sampler"
NOT_OURS = {"--no-deps", "--tables-only"}  # pip's (the install notes) and scripts/leaderboard.py's


def _code_blocks() -> list[tuple[str, str]]:
    return re.findall(r"```(\w*)\n(.*?)```", TEXT, flags=re.S)


def _commands() -> list[str]:
    """Every aebench command line: code-block lines (also after `&&`) and inline code spans."""
    lines: list[str] = []
    for lang, body in _code_blocks():
        if lang not in ("", "bash", "sh", "console"):
            continue
        for line in body.splitlines():
            for part in line.split("&&"):
                part = part.split(" #", 1)[0].strip()
                part = re.split(r"\s(?:>>?|\|)\s", part, maxsplit=1)[0]  # a shell redirection or pipe ends the command
                part = re.sub(r"^\.venv/bin/", "", part)
                if part.startswith("aebench "):
                    lines.append(part)
    prose = re.sub(r"```.*?```", "", TEXT, flags=re.S)
    lines += [re.sub(r"\[([^\]]+)\]", r"\1", " ".join(span.split()))  # `[--json]`: an optional part
              for span in re.findall(r"`(aebench [^`]+)`", prose)]
    return lines


def _parse(line: str) -> tuple[click.Command, click.Context | None]:
    """Parse a command line with click; a bare `aebench NAME` (the prose naming a command) only has to
    name a command."""
    args = shlex.split(line)[1:]
    _load_commands()
    assert args and args[0] in cli.commands, f"README uses `aebench {args[0] if args else ''}`, which is not a command"
    command = cli.commands[args[0]]
    if len(args) == 1:
        return command, None
    return command, command.make_context(args[0], args[1:], parent=click.Context(cli, info_name="aebench"))


COMMANDS = _commands()


def test_the_readme_has_commands_to_check():
    assert len(COMMANDS) >= 15
    assert any(c.startswith("aebench run --config suite.toml") for c in COMMANDS)


@pytest.mark.parametrize("line", COMMANDS)
def test_every_readme_command_parses(line):
    """A wrong flag, a missing value or an unknown command in the README fails here."""
    _parse(line)


def _suite_toml() -> str:
    blocks = [body for lang, body in _code_blocks() if lang == "toml" and "[[samplers]]" in body]
    assert blocks, "the README lost its suite example"
    return blocks[0]


RUN_LINES = [c for c in COMMANDS if c.startswith("aebench run ") and "--model" not in c]


@pytest.mark.parametrize("line", RUN_LINES)
def test_every_readme_run_example_is_a_valid_run(line, tmp_path, monkeypatch):
    """Builds the run configuration (names, options, the README's suite file) and checks sampler
    options against the latent dimension of the data set's default model, as a run does before work."""
    from aebench.commands.run import config_from_options
    from aebench.dataset import default_latent_dim
    from aebench.run.preflight import check_sampler_space

    monkeypatch.chdir(tmp_path)
    (tmp_path / "suite.toml").write_text(_suite_toml())
    shutil.copytree(EXAMPLE.parent / "ci", tmp_path / "examples" / "ci")  # the CI example's suite
    if "jitter" in line:  # the README's plugin example: register it as its installed package would
        import importlib

        import aebench.plugins

        monkeypatch.syspath_prepend(str(EXAMPLE))
        aebench.plugins.reset()
        aebench.plugins.get_plugin_manager().register(importlib.import_module("aebench_example_sampler"),
                                                      name="aebench_example_sampler")
    _, ctx = _parse(line)
    config = config_from_options(**ctx.params)
    n_train = {"orl_faces": 320}.get(config.dataset, 10**9)  # ORL: 40 people x 8 training faces
    dim = config.latent_dim or default_latent_dim(config.dataset)
    check_sampler_space(config.samplers, dim, n_train)


def _set_examples() -> list[str]:
    """Prose examples like `--set plane_paths.axes=8,36 --set plane_paths.angles=0,45` for a sampler."""
    prose = re.sub(r"```.*?```", "", TEXT, flags=re.S)
    return [" ".join(span.split()) for span in re.findall(r"`(--set [^`]+)`", prose)]


@pytest.mark.parametrize("span", _set_examples())
def test_every_readme_set_example_fits_the_default_model(span):
    """An option example must name a real option with a valid value, and a sampler's must work on the
    default data set's model (ORL, N=64)."""
    from aebench.commands.run import config_from_options
    from aebench.plugins import get_registry
    from aebench.run.preflight import check_sampler_space

    if re.search(r"[A-Z]{3,}", span):
        pytest.skip(f"{span}: a placeholder, not an example")
    args = shlex.split(span)
    owners = {a.split(".", 1)[0] for a in args[1::2]}
    samplers = tuple(sorted(o for o in owners if o in get_registry("sampler")))
    config = config_from_options(samplers=samplers, assignments=tuple(args[1::2]))
    check_sampler_space(config.samplers, 64, 320)


def test_the_readme_suite_means_what_it_says(tmp_path, monkeypatch):
    from aebench.commands.run import config_from_options

    monkeypatch.chdir(tmp_path)
    (tmp_path / "suite.toml").write_text(_suite_toml())
    config = config_from_options(config_path="suite.toml")
    assert config.seeds == [0, 1, 2]  # `seeds = 3` means three seeds, like --seeds 3
    assert [s.label for s in config.samplers] == ["plane_seed", "plane_conditional", "gmm"]
    assert config.region_options == {"knn": {"k": 5}} and config.metric_options == {"kid": {"subsets": 50}}


def _all_flags() -> dict[str, set[str]]:
    _load_commands()
    return {name: {opt for p in cmd.params for opt in p.opts if opt.startswith("--")}
            for name, cmd in cli.commands.items()}


def test_every_flag_the_readme_names_exists():
    flags = _all_flags()
    known = set().union(*flags.values()) | {p.opts[0] for p in cli.params} | {"--help", "--version"} | NOT_OURS
    prose = re.sub(r"```.*?```", "", TEXT, flags=re.S)
    named = set(re.findall(r"`(--[a-z][a-z0-9-]*)", prose)) | set(re.findall(r"\s(--[a-z][a-z0-9-]*)", prose))
    missing = sorted(named - known)
    assert not missing, f"README names flags no command has: {missing}"
    run_paragraph = TEXT.split("`aebench run` options:", 1)[1].split("\n\n", 1)[0]
    run_named = set(re.findall(r"(--[a-z][a-z0-9-]*)", run_paragraph))
    assert run_named and not run_named - flags["run"], sorted(run_named - flags["run"])
    assert flags["run"] - run_named - {"--help"} == set(), "run options the README does not list"


def test_every_command_is_in_the_readme_table():
    _load_commands()
    for name in cli.commands:
        assert f"| `aebench {name}" in TEXT, f"`aebench {name}` is missing from the README's command table"
