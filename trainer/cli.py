"""jenga-train: train, evaluate, predict, report, hold out attack types, generate data.

Exit codes: 0 success, 2 bad usage/config/data (one line on stderr), 1 other failure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from jenga_edge.contract.cli import JengaGroup, config_option, data_options, model_option, set_option, version_option

CONFIG_HELP = "Experiment YAML file (see examples/configs/ and docs/config-reference.md)."
OUTPUT_DIR_HELP = "Write the run here instead of the config's output_dir."


@click.group(cls=JengaGroup, invoke_without_command=True)
@version_option("jenga-train")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@set_option("training.epochs=5", "tasks[0].loss_weight=2")
@click.option("--output-dir", type=click.Path(file_okay=False), help=OUTPUT_DIR_HELP)
@click.pass_context
def main(ctx: click.Context, config_path: str | None, overrides: tuple[str, ...], output_dir: str | None) -> None:
    """Train multitask security models. `jenga-train --config FILE` trains."""
    if ctx.invoked_subcommand is None:
        if not config_path:
            click.echo(ctx.get_help())
            ctx.exit(2)
        ctx.invoke(train, config_path=config_path, overrides=overrides, output_dir=output_dir)


@main.command()
@config_option(CONFIG_HELP)
@set_option("training.epochs=5", "tasks[0].loss_weight=2")
@click.option("--output-dir", type=click.Path(file_okay=False), help=OUTPUT_DIR_HELP)
def train(config_path: str, overrides: tuple[str, ...], output_dir: str | None) -> None:
    """Train the experiment and write OUTPUT_DIR/best_model/."""
    from .config import load_config
    from .report import print_training_summary
    from .run import run_experiment

    cfg = load_config(config_path, overrides)
    run = run_experiment(cfg, Path(output_dir) if output_dir else None, out=sys.stderr)
    if run.main:  # under torchrun, rank 0 speaks for the run
        print_training_summary(run)


@main.command()
@model_option()
@data_options("Labelled JSON, JSON Lines or CSV rows.")
@click.option("--json", "as_json", is_flag=True, help="Print metrics as JSON.")
def evaluate(model_dir: str, data_path: str, fmt: str, as_json: bool) -> None:
    """Per-task metrics of a saved model on labelled data."""
    from .inference import evaluate_file
    from .report import print_metrics

    results = evaluate_file(model_dir, data_path, fmt)
    click.echo(json.dumps(results, indent=2)) if as_json else print_metrics(results)


@main.command()
@model_option()
@data_options("JSON, JSON Lines or CSV rows to score.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default="-",
    show_default=True,
    help="Scores as JSON Lines (- : stdout).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=0.9,
    show_default=True,
    help="Sentinel alert threshold for binary tasks.",
)
@click.option("--action-target", default="firewall", show_default=True, help="The action a sentinel alert recommends.")
@click.option("--alerts", type=click.Path(dir_okay=False), help="Write sentinel alerts as JSON Lines here.")
def predict(
    model_dir: str, data_path: str, fmt: str, output: str, threshold: float, action_target: str, alerts: str | None
) -> None:
    """Per-row scores as JSON Lines; the sentinel callback watches every batch."""
    from .inference import predict_file

    summary = predict_file(model_dir, data_path, fmt, output, threshold, action_target, alerts)
    click.echo(json.dumps(summary), err=True)


@main.command()
@config_option(CONFIG_HELP)
@click.option("--task", "task_name", required=True, help="An anomaly_detection task of the config.")
@click.option(
    "--folds",
    default=4,
    show_default=True,
    type=click.IntRange(2, 50),
    help="Attack types are split into this many held-out groups.",
)
@set_option("training.epochs=5", "tasks[0].loss_weight=2")
@click.option("--output-dir", type=click.Path(file_okay=False), help=OUTPUT_DIR_HELP)
def holdout(config_path: str, task_name: str, folds: int, overrides: tuple[str, ...], output_dir: str | None) -> None:
    """Hold out whole attack types: how well are unseen attacks caught?"""
    from .config import load_config
    from .holdout import run_holdout
    from .report import print_holdout

    cfg = load_config(config_path, overrides)
    report = run_holdout(cfg, task_name, folds, Path(output_dir) if output_dir else None, out=sys.stderr)
    out = Path(output_dir or cfg.output_dir) / "holdout.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print_holdout(report)
    click.echo(f"written: {out}")


@main.command()
@model_option()
@data_options("Labelled JSON, JSON Lines or CSV rows, best ones the model never trained on.")
@click.option(
    "-o",
    "--output",
    "output_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Write the PNGs, report.json and report.html (self-contained) into this directory.",
)
@click.option(
    "--holdout",
    "holdout_path",
    type=click.Path(dir_okay=False),
    help="A holdout.json of `jenga-train holdout` to draw per fold (default: the one next to the model, if any).",
)
def report(model_dir: str, data_path: str, fmt: str, output_dir: str, holdout_path: str | None) -> None:
    """Pictures of a saved model on labelled data: ROC/PR curves, score histograms, recall per type, ..."""
    from .visual_report import write_report

    result = write_report(model_dir, data_path, fmt, output_dir, holdout_path)
    n = sum(len(s["figures"]) for s in result["sections"])
    click.echo(f"written: {Path(output_dir) / 'report.html'} ({n} figures, numbers in report.json)")


@main.command()
@click.option(
    "--use-case",
    required=True,
    type=click.Choice(["network", "fraud", "aiops"]),
    help="Which kind of events to generate.",
)
@click.option("--rows", default=5000, show_default=True, type=click.IntRange(1), help="How many rows.")
@click.option("--seed", default=0, show_default=True, type=int, help="The same seed gives the same rows.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write them: .jsonl, .json or .csv (the format follows the suffix).",
)
def generate(use_case: str, rows: int, seed: int, output: str) -> None:
    """Write a seeded synthetic dataset (.json, .jsonl or .csv)."""
    from .synthetic import generate as gen
    from .synthetic import write

    write(gen(use_case, rows, seed), output)
    click.echo(f"wrote {rows} {use_case} rows to {output}")


if __name__ == "__main__":
    sys.exit(main())
