"""jenga-edge run / validate: the agent, from its config file."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..contract.cli import bundle_option, config_option, set_option
from ..contract.errors import SinkFailure
from ..systemd import JournalLog, Notifier, PrefixedStream

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_HELP = "Agent config file (see firmware_configs/ and docs/config-reference.md)."
BUNDLE_HELP = "Use this bundle directory instead of the config's agent.bundle."
WORKERS_HELP = (
    "Scoring processes, one per core (overrides agent.workers; 1: a single process). Above 1, TCP/UDP "
    "listeners share their port and keyed state is sharded by agent.shard_key (docs/agent.md)."
)


def workers_option() -> Callable[[F], F]:
    return click.option("--workers", type=click.IntRange(1, 256), default=None, help=WORKERS_HELP)


def _with_workers(overrides: tuple[str, ...], workers: int | None) -> tuple[str, ...]:
    # an override, so that a reload (which reads the config file again) keeps it
    return (*overrides, *([f"agent.workers={workers}"] if workers is not None else []))


def _overrides(overrides: tuple[str, ...], bundle: str | None) -> tuple[str, ...]:
    # --bundle is a path typed in a shell: relative to the working directory.
    return (*overrides, *([f"agent.bundle={os.path.abspath(bundle)}"] if bundle else []))


def _service() -> tuple[JournalLog, Notifier]:
    """Under systemd: the notify socket (taken out of the environment, so that commands the
    agent starts do not inherit it) and, when stderr is the journal, priority-prefixed lines
    (also for what others write to stderr). Elsewhere: plain lines, and no notifications."""
    log = JournalLog(sys.stderr)
    if log.journal:
        sys.stderr = PrefixedStream(sys.stderr)
    return log, Notifier.from_environ()


@click.command()
@config_option(CONFIG_HELP)
@bundle_option(BUNDLE_HELP)
@set_option()
@workers_option()
def run(config_path: str, bundle: str | None, overrides: tuple[str, ...], workers: int | None) -> None:
    """Run the agent: read events, score them, apply sentinel rules, act.

    SIGHUP reloads the config and bundle (verified first; on failure the old
    one keeps serving). SIGTERM/SIGINT drain accepted events, flush the sinks,
    print a summary line on stderr and exit 0. With a stdin source the agent
    exits at the end of its input. When a file sink or the dead-letter file
    cannot be written and on_sink_failure is stop, it stops, prints the summary
    and one error line naming the sink, and exits 2. Under systemd (Type=notify)
    it reports READY, STATUS, RELOADING, STOPPING and watchdog pings, and
    journal lines carry their priority (docs/systemd.md). With --workers N, a
    supervisor runs N scoring processes and prints one combined summary; a worker
    that dies stops the others and the command exits 1.
    """
    from ..config import load_agent_config

    log, service = _service()
    overrides = _with_workers(_overrides(overrides, bundle), workers)
    cfg = load_agent_config(config_path, overrides)
    if cfg.agent.workers > 1:  # the supervisor never imports onnxruntime: its workers do
        _run_workers(cfg, config_path, overrides, log, service)
        return
    from ..agent import Agent, summary_line

    agent = Agent(cfg, config_path, overrides, log=log, service=service)
    agent.install_signal_handlers()
    summary = agent.run()
    log(summary_line(summary))
    if agent.fatal is not None:  # on_sink_failure: stop; the summary above says what was lost
        raise SinkFailure(agent.fatal)


def _run_workers(cfg: Any, config_path: str, overrides: tuple[str, ...], log: JournalLog, service: Notifier) -> None:
    from ..workers import WorkerFailure, run_workers, summary_line

    summary, sup = run_workers(cfg, config_path, overrides, log, service)
    if sup.error is not None and not summary["per_worker"]:  # failed at start: the error alone, as one agent
        raise WorkerFailure(*sup.error)
    log(summary_line(summary))
    if summary["fatal"] is not None:
        raise SinkFailure(summary["fatal"])
    if sup.error is not None:
        raise WorkerFailure(*sup.error)
    if sup.failure is not None:
        raise WorkerFailure(sup.failure)


@click.command()
@config_option(CONFIG_HELP)
@bundle_option(BUNDLE_HELP)
@set_option()
@workers_option()
@click.option("--no-bundle", is_flag=True, help="Check the config only, not the bundle it names.")
def validate(
    config_path: str, bundle: str | None, overrides: tuple[str, ...], workers: int | None, no_bundle: bool
) -> None:
    """Check an agent config, and verify the bundle it names, without running.
    With workers above 1: the shard key and each worker's sources and files."""
    from ..config import load_agent_config
    from ..workers import check_config

    cfg = load_agent_config(config_path, _with_workers(_overrides(overrides, bundle), workers))
    shard = check_config(cfg)
    if no_bundle:
        click.echo(f"{config_path}: config ok ({len(cfg.sources)} source(s), {len(cfg.rules)} rule(s))")
        _echo_workers(cfg, shard)
        return
    from ..agent import build_pipeline
    from ..contract.text import escape_text

    pipe = build_pipeline(cfg, config_path)
    click.echo(
        f"{config_path}: ok — bundle {pipe.bundle.bundle_id} verified ({pipe.bundle.trust_note}), tasks "
        f"{escape_text(', '.join(pipe.scorer.tasks))}{' (merged graph)' if pipe.scorer.merged else ''}, "
        f"{len(pipe.rules.rules)} rule(s), {len(cfg.sources)} source(s), {len(cfg.sinks)} sink(s), "
        f"{len(cfg.actions)} action(s)"
    )
    from .events_text import describe

    if cfg.agent.workers > 1:
        from ..worker_agent import pipeline_shard_key

        _echo_workers(cfg, pipeline_shard_key(cfg, pipe))
    dec = pipe.decoder
    click.echo("events, as this agent reads them:")
    for line in describe(dec.model, [*dec.schema.names, *(k for k in dec.key_names if k not in dec.schema.names)]):
        click.echo(f"  {line}")


def _echo_workers(cfg: Any, shard: str | None) -> None:
    if cfg.agent.workers == 1:
        return
    from ..workers import worker_files

    how = (
        f"shard key {shard} (every window and cooldown key holds it)"
        if shard
        else "no keyed state: listener lines stay where the kernel put them, other sources' are shared out by batch"
    )
    click.echo(f"workers: {cfg.agent.workers}, {how}")
    for line in worker_files(cfg):
        click.echo(f"  {line}")
