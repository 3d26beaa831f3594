"""`python -m lab`: check a scenario, run it, label an eve.json again."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import msgspec

from . import labels, scenario
from .errors import LabError


@click.group()
def main() -> None:
    """The traffic lab: real traffic in network namespaces, captured, labelled."""


@main.command()
@click.argument("scenario_file", type=click.Path(path_type=Path))
def check(scenario_file: Path) -> None:
    """Validate SCENARIO_FILE and say which tools are missing and whether the host is safe to use."""
    from .runner import preflight
    from .topology import Topology

    sc = scenario.load(scenario_file)
    click.echo(f"{scenario_file}: {len(sc.hosts)} hosts, {len(sc.steps)} steps, {sc.duration_s:g} s")
    preflight(sc, Topology(sc))
    click.echo("ready: every tool found, the host's networks do not overlap the lab's, running as root")


@main.command()
@click.argument("scenario_file", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="empty output folder")
@click.option(
    "--seed", type=int, default=None, help="replace the scenario's seed (steps without their own seed follow)"
)
def run(scenario_file: Path, out: Path, seed: int | None) -> None:
    """Run SCENARIO_FILE: traffic, capture, Suricata, labels, manifest in OUT."""
    from .runner import Run

    sc = scenario.load(scenario_file)
    if seed is not None:
        sc = msgspec.structs.replace(sc, seed=seed)
    manifest = Run(sc, out, scenario_file).run()
    click.echo(json.dumps(manifest["counts"]["flows"], indent=1))
    click.echo(f"{out}: labelled.jsonl.gz, truth.json, manifest.json")


@main.command()
@click.argument("eve", type=click.Path(exists=True, path_type=Path))
@click.argument("truth", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="labelled JSONL (.gz)")
def label(eve: Path, truth: Path, out: Path) -> None:
    """Label the records of EVE from the ground truth in TRUTH (a run's truth.json)."""
    counts = labels.label_file(eve, labels.load_truth(truth), out)
    click.echo(json.dumps(counts["flows"], indent=1))


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--labels-only", is_flag=True, help="keep Suricata's eve.json; label it again")
def reprocess(run_dir: Path, labels_only: bool) -> None:
    """Run Suricata and the labeller again on RUN_DIR's capture (after a config change)."""
    from .runner import reprocess as do_reprocess

    manifest = do_reprocess(run_dir.resolve(), suricata_again=not labels_only)
    click.echo(json.dumps(manifest["counts"]["flows"], indent=1))


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("lab/corpus"), show_default=True)
def publish(runs: tuple[Path, ...], out: Path) -> None:
    """Copy the labelled records, truth and manifest of RUNS into the corpus folder OUT, and index it."""
    from .corpus import publish as do_publish

    for line in do_publish(list(runs), out):
        click.echo(line)


def entry() -> None:
    try:
        main(standalone_mode=False)
    except LabError as exc:
        click.echo(f"lab: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
