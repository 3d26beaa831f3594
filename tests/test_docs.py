"""The documentation runs as written.

* docs/config-reference.md is what docs/gen_reference.py prints from the typed configs;
* every command in a ```sh block of README.md and docs/*.md parses against the real
  command (its subcommands and options exist, required options are there), every
  `make` target exists, every `python bench/...` script and option exists;
* every ```yaml block loads: as an agent config or an experiment file when its keys are
  config sections (merged over a minimal valid one), as YAML otherwise; ```json is JSON;
* the README's quick start runs, line by line, in a copy of examples/ (slow: it trains).
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import msgspec
import pytest

from export.cli import main as export_cli
from jenga_edge.cli import main as edge_cli
from jenga_edge.config import AgentConfig, agent_config_from_dict
from jenga_edge.contract.typed import parse_yaml
from trainer.cli import main as train_cli
from trainer.config import ExperimentConfig, config_from_dict

REPO = Path(__file__).resolve().parents[1]
PAGES = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "firmware_configs" / "README.md",
    REPO / "bench" / "README.md",
    REPO / "CONTRIBUTING.md",
]
CLIS = {
    "jenga-train": train_cli,
    "jenga-export": export_cli,
    "jenga-edge": edge_cli,
    "trainer": train_cli,
    "export": export_cli,
    "jenga_edge.cli": edge_cli,
}
FENCE = re.compile(r"^```(\w*)\s*$")


def blocks(page: Path) -> list[tuple[str, str, int]]:
    """(language, text, first line number) of every fenced block."""
    out, lang, start, body = [], None, 0, []
    for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        m = FENCE.match(line)
        if lang is None and m:
            lang, start, body = m.group(1), n + 1, []
        elif lang is not None and line.strip() == "```":
            out.append((lang, "\n".join(body), start))
            lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"{page}: an unclosed code block"
    return out


def _all(kind: str) -> list[tuple[str, str]]:
    return [(f"{p.relative_to(REPO)}:{n}", text) for p in PAGES for lang, text, n in blocks(p) if lang == kind]


def shell_lines(text: str) -> list[str]:
    lines = text.replace("\\\n", " ").splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def words(line: str) -> list[str]:
    """The command's words: env assignments dropped, up to a redirect, pipe or `;`."""
    out = []
    for w in shlex.split(line, comments=True):
        if w in ("<", ">", ">>", "|", "||", "&&", ";", "2>", "2>&1") or w.startswith(("<", ">")):
            break
        if not out and re.fullmatch(r"[A-Z_]+=\S*", w):
            continue
        out.append(w)
    if out and out[0].startswith(".venv/bin/"):
        out[0] = out[0][len(".venv/bin/") :]
    return out


def _parse(prog: str, cli: click.Command, args: list[str]) -> None:
    try:
        _make_contexts(prog, cli, args)
    except click.exceptions.Exit as done:  # --help, --version: parsed, and done
        assert done.exit_code == 0


def _make_contexts(prog: str, cli: click.Command, args: list[str]) -> None:
    ctx = cli.make_context(prog, list(args))
    if isinstance(cli, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if rest:
            name, cmd, sub_args = cli.resolve_command(ctx, rest)
            assert cmd is not None, f"no command {rest[0]!r}"
            cmd.make_context(name or "", sub_args, parent=ctx)


def check_command(w: list[str]) -> None:
    prog, args = w[0], w[1:]
    if prog == "torchrun" and "-m" in args:  # the launcher's own options, then the module's command
        at = args.index("-m")
        prog, args = args[at + 1], args[at + 2 :]
    if prog in ("python", "python3") and args[:1] == ["-m"]:
        prog, args = args[1], args[2:]
    elif prog in ("python", "python3") and args and args[0].endswith(".py"):
        script = REPO / args[0]
        assert script.is_file(), f"no script {args[0]}"
        source = script.read_text(encoding="utf-8")
        for opt in (a.split("=", 1)[0] for a in args[1:] if a.startswith("--")):
            assert f'"{opt}"' in source, f"{args[0]} has no option {opt}"
        return
    if prog == "make":
        targets = re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M)
        for t in (a for a in args if "=" not in a):
            assert t in targets, f"make has no target {t}"
        return
    if prog in CLIS:
        _parse(prog, CLIS[prog], args)


SH = _all("sh")


@pytest.mark.parametrize("where,text", SH, ids=[w for w, _ in SH])
def test_every_command_parses_as_written(where, text):
    for line in shell_lines(text):
        w = words(line)
        if not w or w[0] in (".", "source"):
            continue
        try:
            check_command(w)
        except (click.ClickException, AssertionError) as exc:
            msg = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
            pytest.fail(f"{where}: `{line.strip()}`: {msg}")


def test_the_command_check_can_fail():
    with pytest.raises(click.ClickException):
        check_command(["jenga-edge", "inspect", "BUNDLE"])  # --bundle is required
    with pytest.raises(click.ClickException):
        check_command(["jenga-export", "--model", "M", "-o", "B", "--opset", "7"])
    with pytest.raises(AssertionError):
        check_command(["make", "deploy"])
    with pytest.raises(click.ClickException):  # under torchrun: the module's command is checked
        check_command(["torchrun", "--nproc_per_node", "2", "-m", "trainer", "train", "--epochs", "3"])


AGENT_KEYS = {f.encode_name for f in msgspec.structs.fields(AgentConfig)}
EXPERIMENT_KEYS = {f.encode_name for f in msgspec.structs.fields(ExperimentConfig)}
MIN_AGENT = {"agent": {"bundle": "b"}, "sources": [{"type": "stdin"}]}
MIN_EXPERIMENT = {
    "project_name": "p",
    "sources": {"net": {"path": "net.jsonl"}},
    "tasks": [{"name": "t", "type": "anomaly_detection", "source": "net", "label": {"column": "label"}}],
}


def check_yaml(text: str, where: str) -> None:
    data = parse_yaml(text)
    if not isinstance(data, dict):
        return
    keys = set(data)
    agent = keys <= AGENT_KEYS and (
        "agent" in keys or not keys <= EXPERIMENT_KEYS or isinstance(data.get("sources"), list)
    )
    if agent:
        agent_config_from_dict({**MIN_AGENT, **data}, where)
    elif keys <= EXPERIMENT_KEYS:
        config_from_dict({**MIN_EXPERIMENT, **data}, where, check_files=False)
    else:
        pytest.fail(
            f"{where}: yaml keys {sorted(keys)} are neither an agent config nor an experiment file "
            "(use a text block for other YAML)"
        )


YAML = _all("yaml")


@pytest.mark.parametrize("where,text", YAML, ids=[w for w, _ in YAML])
def test_every_yaml_block_loads(where, text):
    check_yaml(text, where)


def test_the_yaml_check_can_fail():
    with pytest.raises(Exception, match=r"sources\[0\]\.port"):
        check_yaml("sources: [{type: tcp, port: 99999}]", "x")


JSON = _all("json")


@pytest.mark.parametrize("where,text", JSON, ids=[w for w, _ in JSON])
def test_every_json_block_parses(where, text):
    json.loads(text)


def test_the_config_reference_is_generated_from_the_code():
    gen = runpy.run_path(str(REPO / "docs" / "gen_reference.py"))
    assert (REPO / "docs" / "config-reference.md").read_text(encoding="utf-8") == gen["render"](), (
        "docs/config-reference.md is out of date: run `make docs`"
    )


def quickstart() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    marker = text.index("<!-- quickstart:")
    lang, body, _ = next(b for b in blocks(REPO / "README.md") if b[2] > text[:marker].count("\n") + 1)
    assert lang == "sh"
    return [line for line in shell_lines(body) if not line.startswith(". ")]


@pytest.mark.slow
def test_the_quick_start_runs(tmp_path):
    shutil.copytree(REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("data"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for line in quickstart():
        proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        allowed = (0, 1) if line.startswith("jenga-edge check") else (0,)  # check: 1 = a threat found
        assert proc.returncode in allowed, f"`{line}` exited {proc.returncode}:\n{proc.stderr[-2000:]}"
    assert (tmp_path / "build/demo/bundle/manifest.json").is_file()
    assert (tmp_path / "build/demo/alerts.db").is_file()
