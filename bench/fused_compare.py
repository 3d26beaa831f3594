"""Which heads should a fused task combine, and how? Measure on the holdout folds.

Runs `jenga-train holdout`'s protocol (whole attack types held out, 4 folds) on
NSL-KDD's example config once per fold, then scores the same trained model many
ways, each with a threshold at --fpr of the validation normal rows: every binary
member alone (attack, novelty, distance), every fused pair or triple by Fisher,
Cauchy and min-p, calibrated on all validation normal rows or on disjoint halves,
and two distances not kept (the feature encoder's Mahalanobis distance, the
distance to 16 k-means prototypes in the trunk). Reports unseen-type recall and
the FPR on held-out normal rows per fold. Prints a table and writes JSON.

    python bench/fused_compare.py --out build/bench/fused_compare.json
    python bench/fused_compare.py --set training.epochs=2 --set sources.kdd.limit=4000   # a quick look
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from trainer import metrics as M
from trainer.config import load_config
from trainer.dataset import Holdout
from trainer.holdout import attack_groups, make_folds
from trainer.model import FusedHead
from trainer.run import run_experiment

REPO = Path(__file__).resolve().parents[1]
MEMBERS = ("attack", "novelty", "distance")
SLICES = ("train", "val_normal", "val_attack", "test_normal", "held")


@torch.no_grad()
def fold_views(run) -> dict[str, dict[str, np.ndarray]]:
    """Per row slice: the members' statistics and the trunk and encoder outputs."""
    tr = run.trainer
    model, task, src = tr.model.eval(), tr.tasks["attack"], tr.sources["kdd"]
    y = task.y
    val = task.val_idx  # the same rows for every binary task of the source (one label column)
    rows = {
        "train": src.train_idx[y[src.train_idx] == 0],
        "val_normal": val[y[val] == 0],
        "val_attack": val[y[val] == 1],
        "test_normal": src.test_idx[y[src.test_idx] == 0],
        "held": src.held_idx,
    }
    out = {}
    for name, idx in rows.items():
        t = torch.as_tensor(idx)
        num, cat = tr.num["kdd"][t], tr.cat["kdd"][t]
        h = model.shared("kdd", num, cat)
        z = torch.stack([model.member_statistic(m, h, num, cat) for m in MEMBERS], dim=1)
        out[name] = {"z": z.numpy(), "h": h.numpy(), "enc": model.adapters["kdd"].encoder(num, cat).numpy()}
    return out


def mahalanobis(views: dict, space: str) -> Callable[[str], np.ndarray]:
    x = views["train"][space]
    mean = x.mean(axis=0)
    cov = np.cov(x - mean, rowvar=False)
    precision = np.linalg.inv(cov + 1e-3 * np.trace(cov) / len(cov) * np.eye(len(cov)))
    return lambda k: np.log(np.einsum("ij,jk,ik->i", views[k][space] - mean, precision, views[k][space] - mean) + 1e-9)


def prototypes(views: dict, space: str, k: int = 16, iters: int = 20) -> Callable[[str], np.ndarray]:
    x = views["train"][space]
    centers = x[np.random.default_rng(0).choice(len(x), k, replace=False)]
    for _ in range(iters):
        nearest = ((x[:, None] - centers[None]) ** 2).sum(-1).argmin(1)
        centers = np.stack([x[nearest == j].mean(0) if (nearest == j).any() else centers[j] for j in range(k)])
    return lambda s: np.log(((views[s][space][:, None] - centers[None]) ** 2).sum(-1).min(1) + 1e-9)


def at_fpr(score: Callable[[str], np.ndarray], fpr: float) -> dict[str, float]:
    """Threshold at `fpr` of the validation rows' normals (as training picks it), then
    recall of the held-out types and FPR on the held-out normal rows."""
    vs = np.r_[score("val_normal"), score("val_attack")]
    vy = np.r_[np.zeros(score("val_normal").size), np.ones(score("val_attack").size)].astype(np.int64)
    t = M.choose_threshold(vy, vs, {"target_fpr": fpr})
    return {"recall": float(np.mean(score("held") >= t)), "fpr": float(np.mean(score("test_normal") >= t))}


def fused(views: dict, members: tuple[str, ...], combination: str, halves: bool) -> Callable[[str], np.ndarray]:
    cols = [MEMBERS.index(m) for m in members]
    z = {k: torch.as_tensor(views[k]["z"][:, cols]) for k in SLICES}
    head = FusedHead(len(members), combination)
    normal = z["val_normal"]
    if halves:
        order = torch.as_tensor(np.random.default_rng(7).permutation(len(normal)))
        a, b = order[: len(normal) // 2], order[len(normal) // 2 :]
        head.calibrate(normal[a], combined=normal[b])
    else:
        head.calibrate(normal)
    scores = {k: head.score(v).numpy() for k, v in z.items()}
    return lambda k: scores[k]


def variants(views: dict, fpr: float) -> dict[str, dict[str, float]]:
    out = {m: at_fpr(lambda k, i=i: views[k]["z"][:, i], fpr) for i, m in enumerate(MEMBERS)}
    out["mahalanobis(encoder)"] = at_fpr(mahalanobis(views, "enc"), fpr)
    out["prototypes(trunk)"] = at_fpr(prototypes(views, "h"), fpr)
    combos = [c for n in (2, 3) for c in itertools.combinations(MEMBERS, n)]
    for members, combination, halves in itertools.product(combos, ("fisher", "cauchy", "min_p"), (False, True)):
        name = f"{'+'.join(members)} {combination}{' halves' if halves else ''}"
        out[name] = at_fpr(fused(views, members, combination, halves), fpr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "examples" / "configs" / "nsl_kdd.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="a config override KEY=VALUE")
    ap.add_argument("--fpr", type=float, default=0.03, help="the target FPR on validation normal rows")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--out", default=str(REPO / "build" / "bench" / "fused_compare.json"))
    args = ap.parse_args()
    cfg = load_config(args.config, args.overrides)
    column, groups = attack_groups(cfg, "attack")
    folds = []
    for i, held in enumerate(make_folds(groups, args.folds, cfg.training.seed)):
        with open(os.devnull, "w") as quiet:
            run = run_experiment(
                cfg,
                Path(cfg.output_dir) / "fused_compare" / f"fold{i + 1}",
                holdout=Holdout("kdd", column, frozenset(held)),
                save=False,
                out=quiet,
            )
        folds.append({"held_out": held, "variants": variants(fold_views(run), args.fpr)})
        print(f"fold {i + 1} ({', '.join(held)}) done", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"fpr": args.fpr, "folds": folds}, indent=1))
    print(f"unseen recall / held-out normal FPR at a {args.fpr:.0%} FPR threshold, per fold and mean")
    for name in folds[0]["variants"]:
        r = [f["variants"][name]["recall"] for f in folds]
        p = [f["variants"][name]["fpr"] for f in folds]
        cells = "  ".join(f"{a:.3f}/{b:.3f}" for a, b in zip(r, p, strict=True))
        print(f"{name:<36} {cells}  mean {np.mean(r):.3f}/{np.mean(p):.3f}")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
