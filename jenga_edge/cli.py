"""jenga-edge: the gateway-side command (torch-free).

Exit codes: 0 success; 2 bad usage or a bundle that fails verification.
"""

from __future__ import annotations

import json
import os
import sys

import click

from .contract.cli import JengaGroup


@click.group(cls=JengaGroup)
@click.version_option(package_name="jenga-ai-edge", prog_name="jenga-edge")
def main() -> None:
    """Score security events with a verified JengaAI bundle at the edge."""


@main.command()
@click.argument("bundle", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the verified manifest as JSON.")
def inspect(bundle: str, as_json: bool) -> None:
    """Verify BUNDLE (every sha256) and print what it holds."""
    from .bundle import verify_bundle
    from .inspect_view import render

    b = verify_bundle(bundle)
    if as_json:
        click.echo(json.dumps(b.manifest, indent=2))
    else:
        click.echo(render(b))


@main.command()
@click.argument("bundle", type=click.Path())
@click.argument("event", required=False)
@click.option("-f", "--file", "path", type=click.Path(dir_okay=False), help="JSON Lines file of events.")
@click.option("--tasks", help="Comma-separated tasks (default: those whose schema fits the events).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@click.option("--explain", default=3, show_default=True, type=click.IntRange(0, 20),
              help="Top contributing fields to show for a threat (0: off).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Use this agent config's event.mapping (e.g. for Suricata eve.json records).")
@click.pass_context
def check(ctx: click.Context, bundle: str, event: str | None, path: str | None, tasks: str | None,
          as_json: bool, explain: int, config_path: str | None) -> None:
    """Check events against BUNDLE: EVENT as a JSON argument, -f FILE.jsonl, or - for stdin.

    \b
    Exit status:
      0  nothing found
      1  a threat was found
      2  bad usage or unreadable input (any rejected event, when no threat)
    """
    from .bundle import verify_bundle
    from .check import check_lines, exit_code, render

    lines = _check_input(event, path)
    mapping = None
    if config_path:
        from .config import load_agent_config
        mapping = load_agent_config(config_path).event.mapping
    b = verify_bundle(bundle)
    results = check_lines(b, lines, [t for t in (tasks or "").split(",") if t] or None, explain, mapping)
    if as_json:
        for r in results:
            click.echo(json.dumps(r.to_json()))
    else:
        click.echo(render(results))
    ctx.exit(exit_code(results))


def _check_input(event: str | None, path: str | None) -> list[bytes]:
    if (event is None) == (path is None):
        raise click.UsageError("give exactly one of EVENT (a JSON object, or - for stdin) and -f FILE")
    if path is not None:
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise click.UsageError(f"cannot read {path}: {exc.strerror}") from None
    elif event == "-":
        raw = sys.stdin.buffer.read()
    else:
        raw = event.encode("utf-8")
    lines = [line for line in raw.splitlines() if line.strip()]
    if not lines:
        raise click.UsageError("no events in the input")
    return lines


SET_HELP = "Override a config value, e.g. --set batching.max_batch=64 (repeatable)."


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Agent config (see firmware_configs/).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--bundle", help="Override agent.bundle.")
def run(config_path: str, overrides: tuple[str, ...], bundle: str | None) -> None:
    """Run the agent: read events, score them, apply sentinel rules, act.

    SIGHUP reloads the config and bundle (verified first; on failure the old
    one keeps serving). SIGTERM/SIGINT drain accepted events, flush the sinks,
    print a summary and exit 0.
    """
    from .agent import Agent, summary_line
    from .config import load_agent_config

    # --bundle is a path typed in a shell: relative to the working directory.
    overrides = (*overrides, *([f"agent.bundle={os.path.abspath(bundle)}"] if bundle else []))
    cfg = load_agent_config(config_path, overrides)
    agent = Agent(cfg, config_path, overrides)
    agent.install_signal_handlers()
    summary = agent.run()
    click.echo(summary_line(summary), err=True)


@main.command()
@click.argument("config_path", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--no-bundle", is_flag=True, help="Check the config only, not the bundle it names.")
def validate(config_path: str, overrides: tuple[str, ...], no_bundle: bool) -> None:
    """Check an agent config (and the bundle it names) without running."""
    from .config import load_agent_config

    cfg = load_agent_config(config_path, overrides)
    if no_bundle:
        click.echo(f"{config_path}: config ok ({len(cfg.sources)} source(s), {len(cfg.rules)} rule(s))")
        return
    from .agent import build_pipeline

    pipe = build_pipeline(cfg)
    click.echo(f"{config_path}: ok — bundle {pipe.bundle.bundle_id} verified, tasks "
               f"{', '.join(pipe.scorer.tasks)}{' (merged graph)' if pipe.scorer.merged else ''}, "
               f"{len(pipe.rules.rules)} rule(s), {len(cfg.sources)} source(s)")


@main.command()
@click.option("--db", required=True, type=click.Path(dir_okay=False), help="The agent's SQLite alert store.")
@click.option("--since", default="1h", show_default=True, help="How far back: 45s, 30m, 1h, 2d.")
@click.option("--task", help="Only this task.")
@click.option("--priority", help="This priority or worse (syslog order), e.g. error.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True)
def alerts(db: str, since: str, task: str | None, priority: str | None, limit: int, as_json: bool) -> None:
    """Query recent alerts from the SQLite alert store."""
    from .sinks import format_text, parse_since, query_alerts

    try:
        seconds = parse_since(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    try:
        rows = query_alerts(db, since_seconds=seconds, task=task, priority=priority, limit=limit)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--priority") from None
    for a in rows:
        click.echo(json.dumps(a) if as_json else format_text(a))
    if not as_json:
        click.echo(f"{len(rows)} alert(s) in the last {since}", err=True)


if __name__ == "__main__":
    sys.exit(main())
