"""Glue for one experiment: config -> data -> model -> train -> best_model/."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jenga_edge.contract.errors import ConfigError

from . import checkpoint, distributed
from .callbacks import Callback, from_config
from .config import ExperimentConfig
from .dataset import Holdout, prepare
from .model import count_parameters
from .train import Trainer, TrainResult, resolve_device


@dataclass
class RunOutput:
    result: TrainResult
    model_dir: Path
    trainer: Trainer
    seconds: float
    main: bool = True  # False on torchrun's ranks > 0: they wrote nothing and print nothing


def run_experiment(
    cfg: ExperimentConfig,
    output_dir: Path | None = None,
    callbacks: Sequence[Callback] = (),
    holdout: Holdout | None = None,
    save: bool = True,
    out=sys.stderr,
) -> RunOutput:
    """Train one experiment. Under torchrun (RANK/WORLD_SIZE in the environment) every rank
    calls this; they train one model with DDP and rank 0 alone writes and prints."""
    d = distributed.from_env()
    device = distributed.rank_device(resolve_device(cfg.training.device), d)
    with distributed.session(device, d):
        return _run(cfg, Path(output_dir or cfg.output_dir), callbacks, holdout, save and d.main, out, d)


def _run(
    cfg: ExperimentConfig,
    out_dir: Path,
    callbacks: Sequence[Callback],
    holdout: Holdout | None,
    save: bool,
    out,
    d: distributed.Dist,
) -> RunOutput:
    out = out if d.main else None
    if d.main:
        out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    loaded = _load_initial(cfg)
    sources, tasks = prepare(cfg, holdout, loaded.schemas if loaded else None)
    if loaded:
        _check_compatible(cfg, loaded, tasks)
    model = loaded.model if loaded else None
    metrics_path = out_dir / "metrics.jsonl" if d.main else None
    if metrics_path is not None:
        metrics_path.unlink(missing_ok=True)
    cbs = [*from_config(cfg.training.callbacks, write_files=d.main), *callbacks]
    trainer = Trainer(cfg, sources, tasks, cbs, model=model, metrics_path=metrics_path, out=out, dist=d)
    ranks = f", {d.world_size} processes (DDP, {distributed.backend_for(trainer.device)})" if d.active else ""
    _say(
        out,
        cfg,
        f"{cfg.project_name}: {len(tasks)} task(s), {len(sources)} source(s), "
        f"{count_parameters(trainer.model):,} parameters, device {trainer.device}{ranks}",
    )
    result = trainer.fit()
    seconds = time.perf_counter() - t0
    model_dir = out_dir / "best_model"
    if save:
        checkpoint.save(model_dir, trainer.model, cfg, sources, tasks, result, trainer.trees)
        summary = {
            "seconds": round(seconds, 2),
            "best_epoch": result.best_epoch,
            "metrics": result.metrics,
            "thresholds": result.thresholds,
            **result.summary,
        }
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    return RunOutput(result, model_dir, trainer, seconds, d.main)


def _load_initial(cfg: ExperimentConfig):
    """A saved model to continue from (retraining on new data), or None."""
    if not cfg.training.init_from:
        return None
    return checkpoint.load(cfg.training.init_from)


def _check_compatible(cfg: ExperimentConfig, loaded, tasks: list) -> None:
    for t in tasks:
        spec = loaded.model.specs.get(t.name)
        if t.cfg.tree_learner() is not None:
            if spec is not None:  # its head would be trained and saved beside the tree
                raise ConfigError(
                    f"training.init_from: task {t.name!r} is a network head in {cfg.training.init_from}; "
                    "a tree model cannot continue it (train from scratch, or keep learner: network)"
                )
            continue  # a tree model is fitted afresh: nothing of it is continued
        if spec is None or spec.n_classes != len(t.labels.classes) or spec.source != t.source:
            raise ConfigError(
                f"training.init_from: task {t.name!r} does not match the saved model "
                f"in {cfg.training.init_from} (missing, or other classes/source)"
            )


def _say(out, cfg: ExperimentConfig, text: str) -> None:
    if cfg.training.progress and out is not None:
        print(text, file=out, flush=True)
