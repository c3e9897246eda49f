"""The CLI package: every command is reachable from the group, answers --help, and stays a
thin wrapper in the module of its stage."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import bottleneck.cli as cli
from bottleneck.cli import COMMAND_MODULES, main

ROOT = Path(__file__).resolve().parents[2]
CLI_DIR = Path(cli.__file__).parent
NOT_COMMAND_MODULES = {"__init__", "__main__", "_options"}
MAX_BODY_LINES = 30


def module_commands(module: object) -> dict[str, click.Command]:
    return {c.name: c for c in vars(module).values() if isinstance(c, click.Command)}


def test_every_module_of_the_package_is_registered() -> None:
    modules = {p.stem for p in CLI_DIR.glob("*.py")} - NOT_COMMAND_MODULES
    assert modules == {m.__name__.rsplit(".", 1)[1] for m in COMMAND_MODULES}


def test_the_group_holds_exactly_the_commands_of_the_modules() -> None:
    found: dict[str, click.Command] = {}
    for module in COMMAND_MODULES:
        commands = module_commands(module)
        assert commands, f"{module.__name__} defines no command"
        assert not set(commands) & set(found), "a command is defined twice"
        found |= commands
    assert found == main.commands
    assert len(found) == 16


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_answers_help(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"], prog_name="bottleneck")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: bottleneck {name} ")
    first_line = main.commands[name].help.split("\n")[0]
    assert " ".join(first_line.split()) in " ".join(result.output.split())


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_is_a_thin_wrapper(name: str) -> None:
    callback = main.commands[name].callback
    function = ast.parse(textwrap.dedent(inspect.getsource(callback))).body[0]
    assert isinstance(function, ast.FunctionDef)
    body = function.body[1:] if ast.get_docstring(function) else function.body
    lines = body[-1].end_lineno - body[0].lineno + 1
    assert lines <= MAX_BODY_LINES, f"{name}: {lines} lines; move the logic into the API"
    nested = [n for n in ast.walk(function) if n is not function
              and isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.While, ast.Try))]
    assert not nested, f"{name} holds logic ({type(nested[0]).__name__}); it belongs in the API"


def test_modules_stay_short() -> None:
    for path in CLI_DIR.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 300, path.name


def test_the_entry_point_and_python_m_reach_the_group() -> None:
    script = re.search(r'^bottleneck = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert script, "pyproject.toml declares no bottleneck script"
    module, _, attr = script.group(1).partition(":")
    assert getattr(importlib.import_module(module), attr) is main
    done = subprocess.run([sys.executable, "-m", "bottleneck.cli", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert all(f"  {name} " in done.stdout for name in main.commands)
