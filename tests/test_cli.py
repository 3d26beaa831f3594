"""The three commands agree: the same names for the same inputs, help on every
option, --version everywhere, one line (not a traceback) when an extra is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import jenga_edge
from export.cli import main as export_cli
from jenga_edge.cli import main as edge_cli
from trainer.cli import main as train_cli

REPO = Path(__file__).resolve().parents[1]
CLIS = {"jenga-train": train_cli, "jenga-export": export_cli, "jenga-edge": edge_cli}

# One name per input, in every command that takes it.
INPUT_OPTIONS = {
    "config_path": "--config",
    "model_dir": "--model",
    "bundle": "--bundle",
    "bundle_dir": "--output",
    "data_path": "--data",
    "data": "--data",
    "overrides": "--set",
    "as_json": "--json",
}


def commands() -> list[tuple[str, click.Command]]:
    out = []
    for prog, cli in CLIS.items():
        out.append((prog, cli))
        if isinstance(cli, click.Group):
            out += [(f"{prog} {name}", cmd) for name, cmd in cli.commands.items()]
    return out


@pytest.mark.parametrize("name,cmd", commands(), ids=[n for n, _ in commands()])
def test_every_option_has_help(name, cmd):
    for p in cmd.params:
        if isinstance(p, click.Option) and not p.hidden:
            assert p.help, f"{name} {p.opts[0]}: no help text"
    assert cmd.help, f"{name}: no help text"


@pytest.mark.parametrize("name,cmd", commands(), ids=[n for n, _ in commands()])
def test_the_same_input_has_the_same_option_everywhere(name, cmd):
    for p in cmd.params:
        if isinstance(p, click.Option) and p.name in INPUT_OPTIONS:
            assert INPUT_OPTIONS[p.name] in p.opts, f"{name}: {p.name} is {p.opts}, expected {INPUT_OPTIONS[p.name]}"
        if isinstance(p, click.Argument):
            assert p.name == "event", f"{name}: inputs are named by options; argument {p.name}"


@pytest.mark.parametrize("prog", CLIS)
def test_version(prog):
    res = CliRunner().invoke(CLIS[prog], ["--version"])
    assert res.exit_code == 0 and res.output == f"{prog} {jenga_edge.__version__}\n"


@pytest.mark.parametrize("prog", CLIS)
def test_the_console_scripts_are_installed(prog):
    exe = shutil.which(prog, path=os.path.dirname(sys.executable))
    assert exe, f"pip install -e . should install {prog}"
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"{prog} {jenga_edge.__version__}"


BLOCK_TORCH = """
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _NoTorch())
"""


@pytest.mark.parametrize(
    "prog,module,args",
    [
        ("jenga-train", "trainer.cli", ["--config", "examples/configs/network_minimal.yaml"]),
        ("jenga-train", "trainer.cli", ["evaluate", "--model", "x", "--data", "y"]),
        ("jenga-export", "export.cli", ["--model", "x", "-o", "y"]),
    ],
)
def test_a_missing_training_extra_is_one_line(prog, module, args):
    """As after an edge-only `pip install .`: the training commands say what to install."""
    code = BLOCK_TORCH + f"from {module} import main\nmain({args!r}, prog_name={prog!r})\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: {prog} needs torch, which is not installed: pip install "
        "'jenga-ai-edge[train]' (or `make setup` in a checkout)\n"
    )


def test_help_of_the_training_commands_needs_no_torch():
    code = BLOCK_TORCH + "from export.cli import main\nmain(['--help'], prog_name='jenga-export')\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0 and "--model" in proc.stdout


def test_an_error_quoting_a_hostile_name_is_one_line(tmp_path):
    """An error message quotes what it refused (here a config key holding a newline and an
    ANSI escape): the `error:` line escapes it, so it stays one line and drives no terminal."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text('agent: {bundle: /nonexistent}\nsources: [{type: stdin}]\n"evil\\e[2J\\nforged": 1\n')
    result = CliRunner().invoke(edge_cli, ["validate", "--config", str(cfg), "--no-bundle"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "\x1b" not in result.stderr
    assert result.stderr.startswith("error: ") and "evil\\x1b[2J\\nforged" in result.stderr
