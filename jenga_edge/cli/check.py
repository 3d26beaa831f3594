"""jenga-edge check: one-off threat checks from a shell."""

from __future__ import annotations

import json
import sys

import click

from ..contract.cli import bundle_option, trust_options
from ..contract.errors import ConfigError


@click.command()
@click.argument("event", required=False)
@bundle_option("The bundle directory (default: the --config's agent.bundle).")
@click.option("-f", "--file", "path", type=click.Path(dir_okay=False), help="A JSON Lines file of events.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Read events as this agent config does (its event.mapping, e.g. for Suricata eve.json).",
)
@click.option("--tasks", help="Comma-separated tasks (default: those whose schema fits the events).")
@click.option(
    "--explain",
    default=3,
    show_default=True,
    type=click.IntRange(0, 20),
    help="Top contributing fields to show for a threat (0: off).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@trust_options()
@click.pass_context
def check(
    ctx: click.Context,
    event: str | None,
    bundle: str | None,
    path: str | None,
    config_path: str | None,
    tasks: str | None,
    explain: int,
    as_json: bool,
    trust_keys: tuple[str, ...],
    require_signature: bool,
) -> None:
    """Check events: EVENT as a JSON argument, - for stdin, or -f FILE.jsonl.

    \b
    Exit status:
      0  nothing found
      1  a threat was found
      2  bad usage or unreadable input (any rejected event, when no threat)
    """
    from ..bundle import verify_bundle
    from ..check import check_lines, exit_code, render
    from ..trust import TrustStore, store_from_options

    lines = _input(event, path)
    from ..config import EventConfig

    ev = EventConfig()
    trust = store_from_options(trust_keys, require_signature)
    if config_path:
        from ..config import load_agent_config

        cfg = load_agent_config(config_path)
        ev = cfg.event
        bundle = bundle or cfg.agent.bundle
        trust = trust or TrustStore.load(cfg.agent.trust)  # the command line's keys, else the agent's
    if not bundle:
        raise click.UsageError("give --bundle DIR (or --config FILE whose agent.bundle names one)")
    b = verify_bundle(bundle, trust)
    wanted = [t for t in (tasks or "").split(",") if t] or None
    results = check_lines(b, lines, wanted, explain, **ev.decoder_args())
    if as_json:
        for r in results:
            click.echo(json.dumps(r.to_json()))
    else:
        click.echo(render(results))
    ctx.exit(exit_code(results))


def _input(event: str | None, path: str | None) -> list[bytes]:
    if (event is None) == (path is None):
        raise click.UsageError("give exactly one of EVENT (a JSON object, or - for stdin) and -f FILE")
    if path is not None:
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    elif event == "-":
        raw = sys.stdin.buffer.read()
    else:
        raw = (event or "").encode("utf-8")
    lines = [line for line in raw.splitlines() if line.strip()]
    if not lines:
        raise click.UsageError("no events in the input")
    return lines
