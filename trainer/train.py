"""The training loop: data held on the device, one task per step, early stopping.

Read top to bottom: Trainer.__init__ puts every source's arrays on the device
once; fit() runs epochs of steps, each step one task's batch indexed on the
device (no per-row DataLoader); evaluate() scores the validation rows, picks
thresholds and the selection metric; the best weights are kept and restored.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jenga_edge.contract.errors import ConfigError, DataError

from . import distributed
from .callbacks import BatchInfo, Callback, CallbackList
from .config import ExperimentConfig
from .dataset import SourceData, TaskData
from .labels import balanced_weights
from .model import MultiTaskModel, TaskSpec, batch_inputs
from .predict import score_rows
from .task_kinds import TrainerKind, trainer_kind
from .trees import TreeModel


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "training.device: 'cuda' was requested but torch sees no CUDA device "
            f"(torch {torch.__version__}); use device: auto or cpu"
        )
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


UNTRAINED = ("fused", "distance")  # modes with no parameters and no loss


def task_specs(tasks: Sequence[TaskData]) -> list[TaskSpec]:
    """The network's heads: every task but those with a tree model of their own."""
    return [
        TaskSpec(
            t.name,
            t.cfg.type,
            t.cfg.mode,
            t.source,
            len(t.labels.classes),
            tuple(t.cfg.combine or ()),
            t.cfg.combination,
        )
        for t in tasks
        if t.cfg.tree_learner() is None
    ]


def threshold_rule(task: TaskData) -> Any:
    rule = task.cfg.threshold_rule
    return rule if isinstance(rule, str) else {"target_fpr": rule.target_fpr}


def kind_of(task: TaskData) -> TrainerKind:
    return trainer_kind(task.cfg.type)


@dataclass
class TrainResult:
    history: list[dict]
    best_epoch: int
    best_score: float
    metrics: dict[str, dict]
    thresholds: dict[str, float]
    summary: dict = field(default_factory=dict)


def lr_at(step: int, total: int, peak: float, warmup_fraction: float) -> float:
    """The learning rate at `step` of `total`: linear warm-up over warmup_fraction of the
    steps, then cosine decay to 0 (bench/dga_study.py trains with it too)."""
    warmup = int(warmup_fraction * total)
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class Trainer:
    def __init__(
        self,
        cfg: ExperimentConfig,
        sources: dict[str, SourceData],
        tasks: list[TaskData],
        callbacks: Sequence[Callback] = (),
        model: MultiTaskModel | None = None,
        metrics_path: Path | None = None,
        out=sys.stderr,
        dist: distributed.Dist = distributed.SINGLE,
    ):
        self.cfg, self.tcfg, self.tasks = cfg, cfg.training, {t.name: t for t in tasks}
        # Under torchrun (dist.active): rank 0 alone prints, writes and evaluates (distributed.py).
        self.dist = dist
        self.batch_size = distributed.per_rank_batch(self.tcfg.batch_size, dist)
        self.metrics_path: Path | None = metrics_path if dist.main else None
        self.out = out if dist.main else None
        self.warnings: list[str] = []  # said on `out` and kept in the summary (and the model's manifest)
        torch.manual_seed(self.tcfg.seed)
        self.device = distributed.rank_device(resolve_device(self.tcfg.device), dist)
        self.model = model or MultiTaskModel({n: s.schema for n, s in sources.items()}, task_specs(tasks), cfg.model)
        self.model.to(self.device)
        if dist.active:
            self._prepare_ddp()
        self.sources = sources
        self.num = {n: torch.as_tensor(s.num, device=self.device) for n, s in sources.items()}
        self.cat = {n: torch.as_tensor(s.cat, device=self.device) for n, s in sources.items()}
        # Text stays uint8 on the device; batch_inputs turns each batch into input_ids.
        self.text = {
            n: (torch.as_tensor(s.text[0], device=self.device), torch.as_tensor(s.text[1], device=self.device))
            for n, s in sources.items()
            if s.text is not None
        }
        # Tree-model tasks are fitted once, before the epochs (_fit_trees); the loop trains the rest.
        self.trees: dict[str, TreeModel] = {}
        net = [t for t in tasks if t.name in self.model.specs]
        self.y = {t.name: torch.as_tensor(t.y, device=self.device) for t in net}
        # Fused and distance tasks have nothing to train: they score with other heads or the trunk.
        self.train_idx = {
            t.name: torch.as_tensor(t.train_idx, device=self.device) for t in net if t.cfg.mode not in UNTRAINED
        }
        self.val_idx = {t.name: torch.as_tensor(t.val_idx, device=self.device) for t in net}
        self.class_weights = {t.name: self._class_weights(t) for t in net}
        self.callbacks = CallbackList(callbacks)
        self.optimizer = self._optimizer()
        self.autocast = self._autocast()
        self.forward = self._compiled_forward()
        # Every rank draws the same permutations from this generator; distributed.shard splits them.
        self.gen = torch.Generator(device=self.device).manual_seed(self.tcfg.seed)
        self.step = 0
        self._recon: dict[str, float] = {}  # novelty tasks: mean reconstruction error of normal validation rows
        self._check_positives()

    # -------------------------------------------------------------- setup
    def _prepare_ddp(self) -> None:
        self.model, synced = distributed.sync_batch_norm(self.model, self.device)
        if not synced and self.cfg.model.normalization == "batch":
            self.warn(
                "model.normalization batch under DDP on CPU: each rank normalizes with its own batch's "
                "statistics (SyncBatchNorm needs GPUs); layer normalization matches a single process"
            )
        # Dropout masks differ per rank (each rank's rows are different rows); the data order
        # comes from self.gen, seeded alike on every rank.
        torch.manual_seed(self.tcfg.seed + self.dist.rank)

    def _class_weights(self, t: TaskData) -> torch.Tensor | None:
        if t.cfg.class_weighting == "none" or t.cfg.mode != "supervised":
            return None
        w = balanced_weights(t.y[t.train_idx], len(t.labels.classes))
        return torch.as_tensor(w, dtype=torch.float32, device=self.device)

    def _optimizer(self) -> torch.optim.Optimizer:
        trunk = {id(p) for p in self.model.trunk.parameters()}
        groups: dict[tuple[str, bool], list] = {}
        for p in self.model.parameters():
            key = ("trunk" if id(p) in trunk else "heads", p.ndim >= 2)
            groups.setdefault(key, []).append(p)
        param_groups = [
            {"params": ps, "name": name, "lr_scale": 1.0, "weight_decay": self.tcfg.weight_decay if decay else 0.0}
            for (name, decay), ps in groups.items()
        ]
        fused = self.device.type == "cuda"
        return torch.optim.AdamW(param_groups, lr=self.tcfg.learning_rate, fused=fused)

    def _autocast(self):
        bf16 = self.tcfg.precision == "bf16" or (self.tcfg.precision == "auto" and self.device.type == "cuda")
        if not bf16:
            return nullcontext
        return lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _compiled_forward(self):
        # Training steps go through DDP's wrapper (it all-reduces the gradients); scoring,
        # calibration and saving use the bare model.
        step_model = distributed.wrap(self.model, self.device, self.dist) if self.dist.active else self.model
        if self.tcfg.compile == "none":
            return step_model
        # reduce-overhead captures CUDA graphs; shapes must stay static, so partial
        # batches are dropped (see _batches) and each task compiles once.
        return torch.compile(step_model, mode="reduce-overhead", dynamic=False)

    def _check_positives(self) -> None:
        """Say when a binary task's validation rows hold too few positives for what it needs:
        a supervised head's PR-AUC and early stopping, or a max_f1 threshold. A novelty task
        with a target_fpr rule needs none (its threshold comes from normal rows)."""
        least = self.tcfg.min_validation_positives
        for name, t in self.tasks.items():
            if not t.binary:
                continue
            n_pos = int(np.count_nonzero(t.y[t.val_idx] == 1))
            if t.cfg.mode in ("novelty", "distance") and n_pos == 0:
                self._print(
                    f"{name}: no positives in validation: early stopping uses the reconstruction loss"
                    + ("" if isinstance(t.cfg.threshold_rule, str) else ", the threshold the normal rows' quantile")
                )
            needs = t.cfg.mode == "supervised" or t.cfg.threshold_rule == "max_f1"
            if needs and n_pos < least:
                self.warn(
                    f"task {name!r}: validation holds {n_pos} positive row(s), fewer than "
                    f"training.min_validation_positives ({least}); its PR-AUC, threshold and early stopping "
                    "rest on too few (more labelled attacks, a larger validation_fraction"
                    + (", or threshold_rule: {target_fpr: F}" if t.cfg.mode == "novelty" else "")
                    + ")"
                )

    def warn(self, text: str) -> None:
        if text in self.warnings:
            return
        self.warnings.append(text)
        if self.out is not None:
            print(f"warning: {text}", file=self.out, flush=True)

    # --------------------------------------------------------------- loop
    def steps_per_epoch(self) -> int:
        # The global batch: a rank's shard in per-rank batches takes as many steps (distributed.shard).
        bs = self.tcfg.batch_size
        return sum(max(1, math.ceil(i.numel() / bs)) for i in self.train_idx.values())

    def lr_at(self, step: int, total: int) -> float:
        return lr_at(step, total, self.tcfg.learning_rate, self.tcfg.warmup_fraction)

    def fit(self) -> TrainResult:
        es = self.tcfg.early_stopping
        total = self.tcfg.epochs * self.steps_per_epoch()
        history, best, best_epoch, best_state, bad = [], -math.inf, 0, None, 0
        self.callbacks.fire("on_train_start", self)
        self._fit_trees()
        for epoch in range(1, (self.tcfg.epochs if self.train_idx else 0) + 1):
            self.callbacks.fire("on_epoch_start", self, epoch)
            t0 = time.perf_counter()
            losses, seen = self._run_epoch(total)
            train_s = time.perf_counter() - t0
            # Rank 0 evaluates and every rank takes its numbers: one best-epoch decision.
            val, selection = distributed.on_main(self.evaluate, self.dist)
            logs = {
                "epoch": epoch,
                "train_loss": losses,
                "val": val,
                "selection": selection,
                "lr": self.optimizer.param_groups[0]["lr"],
                "train_seconds": round(train_s, 4),
                "samples_per_second": round(seen / max(train_s, 1e-9), 1),
            }
            history.append(logs)
            self._log(logs)
            self.callbacks.fire("on_epoch_end", self, epoch, logs)
            if not math.isfinite(selection) and not math.isfinite(best):
                # No task has a defined validation metric: there is nothing to select on, so
                # the latest weights are kept and patience is not spent.
                self.warn("no validation metric is defined (NaN for every task): the last epoch is kept")
                best, best_epoch, best_state = selection, epoch, None
                continue
            if selection >= best:
                # A tie keeps the later, longer-trained weights; only a real gain resets patience.
                bad = 0 if selection > best + es.min_delta else bad + 1
                best, best_epoch = selection, epoch
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in self.model.state_dict().items()})
            else:
                bad += 1
            if bad >= es.patience:
                self._print(f"early stop: no gain in {es.patience} epochs; best epoch {best_epoch}")
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        final = distributed.on_main(self._final_metrics, self.dist)
        result = TrainResult(
            history, best_epoch, best, final, {n: m["threshold"] for n, m in final.items() if "threshold" in m}
        )
        result.summary = self.callbacks.summary()
        if self.dist.active:
            result.summary["distributed"] = distributed.describe(self.dist, self.device, self.tcfg.batch_size)
        if self.warnings:
            result.summary["warnings"] = list(self.warnings)
        self.callbacks.fire("on_train_end", self, result.summary)
        return result

    def _final_metrics(self) -> dict[str, dict]:
        """The kept weights' validation metrics, thresholds and calibrations (rank 0 under DDP)."""
        final, _ = self.evaluate(fire=True)
        self._refit_trees(final)
        for name, m in final.items():
            if "threshold_fallback" in m:
                self.warn(f"task {name!r}: {m['threshold_fallback']}")
        return final

    def _fit_trees(self) -> None:
        """Each tree-model task: boosted on its training rows, stopped early on its validation rows.
        Under DDP rank 0 alone fits them: no other rank scores a tree task or saves it."""
        from . import trees

        if not self.dist.main:
            return
        for name, task in self.tasks.items():
            learner = task.cfg.tree_learner()
            if learner is None:
                continue
            src = self.sources[task.source]
            n_classes = len(task.labels.classes)
            self.trees[name] = tree = trees.fit(
                learner,
                src.num,
                src.cat,
                task.y,
                task.train_idx,
                task.val_idx,
                n_classes,
                trees.class_weights(task.y[task.train_idx], n_classes, task.cfg.class_weighting),
                selection_metric(task, self.tcfg.early_stopping.metric),
                self.tcfg.seed,
            )
            self._print(f"{name}: lightgbm, {tree.best_iteration} rounds kept ({tree.fit_seconds:.1f} s)")

    def _refit_trees(self, final: dict[str, dict]) -> None:
        """Tree tasks with `refit`: boosted again on training + validation rows. Their
        threshold and metrics (in `final`) stay the early-stopped model's on validation
        rows it never saw; the refit's rounds are recorded beside them."""
        from . import trees

        for name, tree in list(self.trees.items()):  # empty but on rank 0
            task = self.tasks[name]
            learner = task.cfg.tree_learner()
            if learner is None or not learner.refit:
                continue
            src, n_classes = self.sources[task.source], len(task.labels.classes)
            rows = np.concatenate([task.train_idx, task.val_idx])
            self.trees[name] = trees.refit(
                learner,
                tree,
                src.num,
                src.cat,
                task.y,
                rows,
                len(task.train_idx),
                trees.class_weights(task.y[rows], n_classes, task.cfg.class_weighting),
                selection_metric(task, self.tcfg.early_stopping.metric),
                self.tcfg.seed,
            )
            final[name]["refit_rounds"] = self.trees[name].best_iteration
            final[name]["refit_rows"] = len(rows)
            self._print(f"{name}: lightgbm refit on {len(rows):,} rows, {self.trees[name].best_iteration} rounds")

    def _run_epoch(self, total_steps: int) -> tuple[dict[str, float], int]:
        self.model.train()
        queues = {n: self._batches(n) for n in self.train_idx}
        sums: dict[str, list[torch.Tensor]] = {n: [] for n in self.train_idx}
        seen = 0
        for name in self._schedule():
            idx = next(queues[name], None)
            if idx is None:  # a small task restarts its pass while bigger ones finish theirs
                queues[name] = self._batches(name)
                idx = next(queues[name])
            for g in self.optimizer.param_groups:
                g["lr"] = self.lr_at(self.step, total_steps) * g["lr_scale"]
            sums[name].append(self._train_step(name, idx))
            seen += idx.numel()
            self.step += 1
        # Losses stay on the device until the epoch ends: a .item() per step would
        # stall the GPU on every batch. Under DDP: the mean over ranks, and every rank's rows.
        names = [n for n, v in sums.items() if v]
        if not names:
            return {}, seen
        means = distributed.mean_over_ranks(torch.stack([torch.stack(sums[n]).mean() for n in names]), self.dist)
        return {n: float(m) for n, m in zip(names, means, strict=True)}, seen * self.dist.world_size

    def _schedule(self) -> list[str]:
        names = list(self.train_idx)
        steps = self.steps_per_epoch()
        if self.tcfg.task_sampling == "round_robin":
            return [names[i % len(names)] for i in range(steps)]
        sizes = torch.tensor([self.train_idx[n].numel() for n in names], dtype=torch.float)
        picks = torch.multinomial(
            sizes / sizes.sum(),
            steps,
            replacement=True,
            generator=torch.Generator().manual_seed(self.tcfg.seed + self.step),
        )
        return [names[i] for i in picks.tolist()]

    def _batches(self, name: str):
        idx = self.train_idx[name]
        perm = distributed.shard(idx[torch.randperm(idx.numel(), device=self.device, generator=self.gen)], self.dist)
        bs = self.batch_size
        stop = perm.numel() - perm.numel() % bs if self.tcfg.compile != "none" and perm.numel() >= bs else perm.numel()
        return (perm[i : i + bs] for i in range(0, stop, bs))

    def _train_step(self, name: str, idx: torch.Tensor) -> torch.Tensor:
        task = self.tasks[name]
        src = task.source
        y = self.y[name].index_select(0, idx)
        # A compiled model captures one shape: the bytes axis stays text_width wide.
        trim = self.tcfg.compile == "none"
        inputs = batch_inputs(self.num[src], self.cat[src], self.text.get(src), idx, trim)
        with self.autocast():
            out = self.forward(name, labels=y, **inputs)
        loss = self._loss(task, out, y) * task.cfg.loss_weight
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.tcfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tcfg.grad_clip)
        self.callbacks.fire("on_before_optimizer_step", self, self.step)
        self.optimizer.step()
        if self.callbacks.wants_scores:
            ids = [self.sources[src].ids[i] for i in idx.cpu().numpy()]
            scores = out["scores"].detach().float().cpu().numpy()
            self.callbacks.fire(
                "on_batch_end",
                self,
                BatchInfo("train", name, task.cfg.type, scores, ids, self.step, float(loss.detach())),
            )
        return loss.detach().float()

    def _loss(self, task: TaskData, out: dict, y: torch.Tensor) -> torch.Tensor:
        if task.cfg.mode == "novelty":
            return out["loss"]
        # An ensemble's logits are k per row (row-major): the mean of the members' losses.
        y = y.repeat_interleave(self.model.ensemble) if self.model.ensemble > 1 else y
        weights = self.class_weights[task.name]
        loss = kind_of(task).loss(out["logits"], y, weights)
        if self.dist.active and weights is not None and not task.binary:
            # cross_entropy's weighted mean divides by this rank's weight sum; the single
            # process divides by the global batch's: rescale so DDP's mean over ranks is that.
            loss = loss * distributed.weight_share(weights.index_select(0, y).sum(), self.dist)
        return loss

    # ---------------------------------------------------------- evaluation
    def evaluate(self, fire: bool = False) -> tuple[dict[str, dict], float]:
        """Validation metrics per task and the early-stopping selection score."""
        results, picks = {}, []
        for name, task in self.tasks.items():
            m = self.evaluate_task(name, task.val_idx, fire=fire)
            results[name] = m
            # Trees were chosen already; fused and distance derive from the trained heads.
            if name not in self.trees and task.cfg.mode not in UNTRAINED:
                picks.append(self.selection_value(name, m)[1])
        if fire:
            self.callbacks.fire("on_evaluate", self, results)
        picks = [p for p in picks if not math.isnan(p)]
        return results, float(np.mean(picks)) if picks else -math.inf

    def evaluate_task(self, name: str, rows: np.ndarray, fire: bool = False, threshold: float | None = None) -> dict:
        task = self.tasks[name]
        idx = torch.as_tensor(rows, device=self.device)
        src = task.source
        cbs = self.callbacks if fire else None
        if task.cfg.mode == "novelty":
            self._calibrate(name)
        if task.cfg.mode == "fused":
            self._calibrate_fused(name)
        if task.cfg.mode == "distance":
            self._fit_distance(name)
        out = score_rows(
            self.model,
            name,
            self.num[src],
            self.cat[src],
            idx,
            self.tcfg.eval_batch_size,
            cbs,
            "evaluate",
            self.sources[src].ids,
            trees=self.trees,
            text=self.text.get(src),
        )
        m = task_metrics(task, task.y[rows], out["scores"], threshold)
        if name in self._recon:
            m["reconstruction_loss"] = self._recon[name]
        return m

    def selection_value(self, name: str, m: dict) -> tuple[str, float]:
        """(metric, value) that ranks this task's epochs. A novelty task whose validation has
        no positives (PR-AUC is NaN) is ranked by its normal rows' reconstruction loss, negated."""
        metric = selection_metric(self.tasks[name], self.tcfg.early_stopping.metric)
        value = m[metric]
        if math.isnan(value) and "reconstruction_loss" in m:
            return "reconstruction_loss", -m["reconstruction_loss"]
        return metric, value

    def _calibrate(self, name: str) -> None:
        """Novelty scores: the CDF of normal validation rows' reconstruction errors."""
        task = self.tasks[name]
        normal = task.val_idx[task.y[task.val_idx] == 0]
        src = task.source
        out = score_rows(
            self.model,
            name,
            self.num[src],
            self.cat[src],
            torch.as_tensor(normal, device=self.device),
            self.tcfg.eval_batch_size,
            text=self.text.get(src),
        )
        self.model.novelty_head(name).calibrate(torch.as_tensor(out["errors"], device=self.device))
        self._recon[name] = float(np.mean(out["errors"]))

    @torch.no_grad()
    def _fit_distance(self, name: str) -> None:
        """Distance scores: the normal training rows' trunk outputs give the mean and
        covariance, the normal validation rows' distances the calibration."""
        task = self.tasks[name]
        src, head = task.source, self.model.distance_head(name)
        was_training = self.model.training
        self.model.eval()
        train = task.train_idx[task.y[task.train_idx] == 0]
        bs = self.tcfg.eval_batch_size
        text = self.text.get(src)
        h = []
        for b in torch.as_tensor(train, device=self.device).split(bs):
            inputs = batch_inputs(self.num[src], self.cat[src], text, b)
            feats = inputs.pop("features")
            h.append(self.model.shared(src, feats["numeric"], feats["categorical"], **inputs).float())
        x = torch.cat(h)
        head.fit(x.mean(dim=1) if x.dim() == 3 else x)  # an ensemble's members: their mean, as scored
        self.model.train(was_training)
        normal = torch.as_tensor(task.val_idx[task.y[task.val_idx] == 0], device=self.device)
        out = score_rows(self.model, name, self.num[src], self.cat[src], normal, bs, text=text)
        head.calibrate(torch.as_tensor(out["errors"], device=self.device))

    def _calibrate_fused(self, name: str) -> None:
        """Fused scores: each member's p-value, then the combined statistic, against the
        normal validation rows."""
        task = self.tasks[name]
        normal = task.val_idx[task.y[task.val_idx] == 0]
        if normal.size == 0:
            raise DataError(f"task {name!r}: mode fused needs normal validation rows to calibrate against")
        src = task.source
        idx = torch.as_tensor(normal, device=self.device)
        z = score_rows(
            self.model, name, self.num[src], self.cat[src], idx, self.tcfg.eval_batch_size, text=self.text.get(src)
        )["members"]
        self.model.fused_head(name).calibrate(torch.as_tensor(z, device=self.device))

    # ------------------------------------------------------------ output
    def _log(self, logs: dict) -> None:
        if self.metrics_path is not None:
            with open(self.metrics_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(logs) + "\n")
        if self.tcfg.progress:
            parts = [f"{n} {k}={v[k]:.4f}" for n, v in logs["val"].items() for k in (self.selection_value(n, v)[0],)]
            loss = np.mean(list(logs["train_loss"].values()))
            self._print(
                f"epoch {logs['epoch']:>3}/{self.tcfg.epochs}  loss {loss:.4f}  "
                f"{'  '.join(parts)}  ({logs['samples_per_second']:,.0f} samples/s)"
            )

    def _print(self, text: str) -> None:
        if self.tcfg.progress and self.out is not None:
            print(text, file=self.out, flush=True)


def selection_metric(task: TaskData, wanted: str) -> str:
    """The configured metric if it applies to the task's kind, else the kind's default."""
    return kind_of(task).selection_metric(wanted)


def task_metrics(task: TaskData, y: np.ndarray, scores: np.ndarray, threshold: float | None = None) -> dict:
    return kind_of(task).metrics(y, scores, len(task.labels.classes), threshold, threshold_rule(task))
