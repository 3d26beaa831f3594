"""Plain-text tables for the terminal."""

from __future__ import annotations

import click

BINARY_KEYS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "recall_at_1pct_fpr",
    "recall_at_5pct_fpr",
    "threshold",
)
MULTI_KEYS = ("accuracy", "macro_f1")


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def print_metrics(results: dict[str, dict]) -> None:
    for task, m in results.items():
        keys = BINARY_KEYS if "roc_auc" in m else MULTI_KEYS
        cells = "  ".join(f"{k} {_fmt(m[k])}" for k in keys if k in m)
        click.echo(f"{task:<20} n={m.get('support', '?')}  {cells}")


def print_training_summary(run) -> None:
    r = run.result
    click.echo(f"best epoch {r.best_epoch} (selection {r.best_score:.4f}), {run.seconds:.1f} s; model: {run.model_dir}")
    print_metrics(r.metrics)
    for key, value in r.summary.items():
        click.echo(f"{key}: {value}")


def print_holdout(report: dict) -> None:
    click.echo(f"unseen-attack protocol, task {report['task']} (groups from {report['group_column']}):")
    for i, f in enumerate(report["folds"], 1):
        click.echo(
            f"  fold {i}: held out {', '.join(f['held_out'])} (n={f['n_unseen']}): "
            f"recall {f['unseen_recall']:.3f}  roc_auc {f['unseen_roc_auc']:.3f}  "
            f"fpr {f['normal_fpr']:.4f}"
        )
        for name, m in f.get("members", {}).items():  # a fused task's members, each at its own threshold
            click.echo(f"          member {name}: recall {m['unseen_recall']:.3f}  fpr {m['normal_fpr']:.4f}")
    for key, s in report["summary"].items():
        click.echo(f"  {key:<15} mean {s['mean']:.4f}  std {s['std']:.4f}  min {s['min']:.4f}  max {s['max']:.4f}")
