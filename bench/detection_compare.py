"""Our model next to the models a user would pick instead, on the same splits.

Per dataset and seed, one stratified 80/20 split of the rows. Every model fits
on the same training rows and is scored on the same test rows:

- ours: the shipped example config (examples/configs/*.yaml), trained with the
  project's trainer (`run_experiment`, its own validation split carved out of
  the training rows, as `jenga-train` does), test rows scored with the saved
  best_model through the trainer's inference (`vectorize_rows` + `score_rows`);
- peers (the `[bench]` extra): logistic regression (one-hot categoricals,
  standardised numerics), HistGradientBoosting and LightGBM (native
  categoricals), XGBoost when it is installed; IsolationForest, fitted on the
  normal training rows only, next to our novelty task. Library defaults: no
  tuning, for them or for us.

Metrics on the test rows: ROC-AUC, PR-AUC (average precision), recall at 1 %
and 5 % FPR (threshold from the test negatives' scores), fit time, and scoring
time per event, one thread, on rows already encoded as each model's input
(ours: torch eager, not onnxruntime), in a batch of all test rows and one event
at a time (median). Prints mean ± std over seeds; writes JSON.

    python bench/detection_compare.py --quick     # 1 seed, fewer rows: ~1 min on 2 cores
    python bench/detection_compare.py             # 3 seeds: ~9 min on 2 busy cores
    python bench/detection_compare.py --quick --no-peers --ours-set model.ensemble=4
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
KDD = REPO.parent / "shared/datasets/nsl-kdd/KDDTrain+_20Percent.txt"
FPRS = (0.01, 0.05)
SINGLE_CALLS = 200  # one-event scoring calls timed per model (median)


# ================================================================= metrics and splits


def recall_at_fpr(y: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """Recall at the lowest threshold whose false-positive rate on the negatives is <= fpr.
    A row is flagged when its score is strictly above the threshold, so ties never push
    the FPR past the target."""
    neg = np.sort(scores[y == 0])[::-1]
    pos = scores[y == 1]
    if not len(neg) or not len(pos):
        return float("nan")
    k = int(np.floor(fpr * len(neg)))  # negatives allowed above the threshold
    threshold = neg[k] if k < len(neg) else -np.inf
    return float(np.mean(pos > threshold))


def detection_metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    out = {"roc_auc": float(roc_auc_score(y, scores)), "pr_auc": float(average_precision_score(y, scores))}
    for f in FPRS:
        out[f"recall_at_{int(f * 100)}pct_fpr"] = recall_at_fpr(y, scores, f)
    return out


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices; each class split in the same proportion."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_test = round(test_fraction * len(idx))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


# ================================================================= features for the peers


@dataclass
class Encoded:
    """Training-fitted encoding of row dicts into arrays: numerics as float (NaN when
    missing), categoricals as codes 0..k-1 by training frequency (NaN when unseen)."""

    numeric: list[str]
    categorical: list[str]
    vocab: dict[str, dict[Any, int]] = field(default_factory=dict)

    @classmethod
    def fit(cls, rows: list[dict], features: list[str]) -> Encoded:
        numeric, categorical = [], []
        for f in features:
            values = [r.get(f) for r in rows]
            is_str = any(isinstance(v, str) for v in values)
            (categorical if is_str else numeric).append(f)
        enc = cls(numeric, categorical)
        for f in categorical:
            counts: dict[Any, int] = {}
            for r in rows:
                counts[r.get(f)] = counts.get(r.get(f), 0) + 1
            ranked = sorted(counts, key=lambda v: (-counts[v], str(v)))
            enc.vocab[f] = {v: i for i, v in enumerate(ranked)}
        return enc

    def transform(self, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        num = np.array([[_float(r.get(f)) for f in self.numeric] for r in rows], dtype=np.float64).reshape(
            len(rows), len(self.numeric)
        )
        cat = np.array(
            [[self.vocab[f].get(r.get(f), np.nan) for f in self.categorical] for r in rows], dtype=np.float64
        ).reshape(len(rows), len(self.categorical))
        return num, cat


def _float(v: Any) -> float:
    if v is None or isinstance(v, str):
        return np.nan
    return float(v)


# ================================================================= peers


@dataclass
class Peer:
    name: str
    build: Callable[[Encoded], Any]  # -> an object with fit(X, y) and score(X)
    novelty: bool = False  # fitted on negatives only


class _Sklearn:
    """Wraps a classifier: X = [numeric | categorical codes]; score = P(positive)."""

    def __init__(self, model: Any, prep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> None:
        self.model, self.prep = model, prep

    def fit(self, num: np.ndarray, cat: np.ndarray, y: np.ndarray) -> None:
        self.model.fit(self._x(num, cat, fit=True), y)

    def _x(self, num: np.ndarray, cat: np.ndarray, fit: bool = False) -> np.ndarray:
        return np.hstack([num, cat])

    def score(self, num: np.ndarray, cat: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(self._x(num, cat))[:, 1]


class _OneHotLinear(_Sklearn):
    """Logistic regression: numerics imputed (training median) and standardised, one-hot categoricals."""

    def _x(self, num: np.ndarray, cat: np.ndarray, fit: bool = False) -> np.ndarray:
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        if fit:
            self.imp = SimpleImputer(strategy="median", keep_empty_features=True).fit(num)
            self.scale = StandardScaler().fit(self.imp.transform(num))
            self.onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(np.nan_to_num(cat, nan=-1))
        z = np.clip(self.scale.transform(self.imp.transform(num)), -10, 10)  # heavy tails: bytes counters
        return np.hstack([z, self.onehot.transform(np.nan_to_num(cat, nan=-1))])


class _IsolationForest:
    def __init__(self, seed: int) -> None:
        from sklearn.ensemble import IsolationForest

        self.model = IsolationForest(random_state=seed, n_jobs=2)

    def fit(self, num: np.ndarray, cat: np.ndarray, y: np.ndarray) -> None:
        from sklearn.impute import SimpleImputer

        self.imp = SimpleImputer(strategy="median", keep_empty_features=True).fit(num)
        self.model.fit(self._x(num, cat))

    def _x(self, num: np.ndarray, cat: np.ndarray) -> np.ndarray:
        return np.hstack([self.imp.transform(num), np.nan_to_num(cat, nan=-1)])

    def score(self, num: np.ndarray, cat: np.ndarray) -> np.ndarray:
        return -self.model.score_samples(self._x(num, cat))  # higher = more anomalous


def peers(seed: int) -> list[Peer]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    def hgb(enc: Encoded) -> _Sklearn:
        mask = [False] * len(enc.numeric) + [True] * len(enc.categorical)
        return _Sklearn(HistGradientBoostingClassifier(categorical_features=mask or None, random_state=seed))

    out = [
        Peer("logistic regression (one-hot)", lambda enc: _OneHotLinear(LogisticRegression(max_iter=2000))),
        Peer("HistGradientBoosting", hgb),
    ]
    try:
        import lightgbm

        class _LightGBM(_Sklearn):
            def fit(self, num: np.ndarray, cat: np.ndarray, y: np.ndarray) -> None:
                cats = list(range(num.shape[1], num.shape[1] + cat.shape[1]))
                self.model.fit(self._x(num, cat), y, categorical_feature=cats or "auto")

        out.append(
            Peer(
                "LightGBM",
                lambda enc: _LightGBM(lightgbm.LGBMClassifier(random_state=seed, n_jobs=2, verbose=-1)),
            )
        )
    except ImportError:
        print("lightgbm not installed: its rows are left out (pip install '.[bench]')", file=sys.stderr)
    try:
        import xgboost

        def xgb(enc: Encoded) -> _Sklearn:
            types = ["q"] * len(enc.numeric) + ["c"] * len(enc.categorical)
            return _Sklearn(
                xgboost.XGBClassifier(
                    random_state=seed, n_jobs=2, tree_method="hist", enable_categorical=True, feature_types=types
                )
            )

        out.append(Peer("XGBoost", xgb))
    except ImportError:
        print("xgboost not installed: its rows are left out", file=sys.stderr)
    out.append(Peer("IsolationForest (normal rows only)", lambda enc: _IsolationForest(seed), novelty=True))
    return out


# ================================================================= datasets


@dataclass
class Dataset:
    name: str
    rows: list[dict]
    y: np.ndarray  # 1 = attack / fraud
    config: Path  # the shipped experiment file
    source: str  # its source name
    supervised_task: str
    novelty_task: str | None
    exclude: list[str]  # never features: labels, annotations


def nsl_kdd(limit: int | None) -> Dataset | None:
    if not KDD.is_file():
        print(f"{KDD}: not found, NSL-KDD left out", file=sys.stderr)
        return None
    from trainer.readers import read_rows

    config = REPO / "examples/configs/nsl_kdd.yaml"
    src = yaml.safe_load(config.read_text())["sources"]["kdd"]
    rows = read_rows(KDD, "csv", columns=src["columns"], limit=limit)
    y = np.array([r["attack"] != "normal" for r in rows], dtype=np.int64)
    name = "NSL-KDD 20% file" + (f" (first {limit:,} rows)" if limit else "")
    return Dataset(name, rows, y, config, "kdd", "attack", "novelty", ["attack", *src.get("ignore", [])])


def fraud(n: int) -> Dataset:
    from trainer.synthetic import generate

    rows = generate("fraud", n, seed=12)
    y = np.array([int(r["label"]) for r in rows], dtype=np.int64)
    return Dataset(
        f"fraud (generated, {n:,} rows)", rows, y, REPO / "examples/configs/fraud.yaml", "tx", "fraud", None, ["label"]
    )


# ================================================================= runs


def time_scoring(
    score: Callable[[Any, Any], np.ndarray], batch: tuple[Any, Any], single: list[tuple[Any, Any]]
) -> dict:
    """µs per event: the whole batch in one call, and one event per call (median), one thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        t0 = time.perf_counter()
        scores = score(*batch)
        batch_s = time.perf_counter() - t0
        times = []
        for one in single:
            t0 = time.perf_counter()
            score(*one)
            times.append(time.perf_counter() - t0)
    n = len(scores)
    return {"scores": scores, "score_us_batch": batch_s / n * 1e6, "score_us_single": statistics.median(times) * 1e6}


def run_peers(ds: Dataset, tr: np.ndarray, te: np.ndarray, seed: int) -> list[dict]:
    feats = [f for f in ds.rows[0] if f not in ds.exclude]
    train_rows = [ds.rows[i] for i in tr]
    enc = Encoded.fit(train_rows, feats)
    num_tr, cat_tr = enc.transform(train_rows)
    num_te, cat_te = enc.transform([ds.rows[i] for i in te])
    y_tr, y_te = ds.y[tr], ds.y[te]
    single = [(num_te[i : i + 1], cat_te[i : i + 1]) for i in range(min(SINGLE_CALLS, len(te)))]
    results = []
    for peer in peers(seed):
        if peer.novelty and ds.novelty_task is None:
            continue
        model = peer.build(enc)
        keep = y_tr == 0 if peer.novelty else np.ones(len(tr), bool)
        t0 = time.perf_counter()
        model.fit(num_tr[keep], cat_tr[keep], y_tr[keep])
        fit_s = time.perf_counter() - t0
        timed = time_scoring(model.score, (num_te, cat_te), single)
        results.append(_result(ds, seed, peer.name, "novelty" if peer.novelty else "supervised", y_te, fit_s, timed))
    return results


def run_ours(
    ds: Dataset,
    tr: np.ndarray,
    te: np.ndarray,
    seed: int,
    tmp: Path,
    learner: str = "network",
    overrides: tuple[str, ...] = (),
) -> list[dict]:
    """learner lightgbm: the supervised task with `learner: lightgbm` (trainer/trees.py), alone."""
    import torch

    from jenga_edge.contract.typed import apply_overrides
    from trainer import checkpoint
    from trainer.config import config_from_dict
    from trainer.dataset import vectorize_rows
    from trainer.predict import score_rows
    from trainer.run import run_experiment
    from trainer.synthetic import write

    train_file = write([ds.rows[i] for i in tr], tmp / f"train-{seed}.jsonl")
    raw = yaml.safe_load(ds.config.read_text())
    src = raw["sources"][ds.source]
    src.pop("columns", None)  # the rows are JSON objects now
    src.update(path=str(train_file), format="jsonl")
    raw["training"].update(seed=seed, progress=False)
    if learner != "network":
        raw["tasks"] = [dict(t, learner=learner) for t in raw["tasks"] if t["name"] == ds.supervised_task]
    # --ours-set: the same overrides as jenga-train --set (a variant of the shipped config)
    cfg = config_from_dict(apply_overrides(raw, list(overrides)))
    t0 = time.perf_counter()
    run = run_experiment(cfg, tmp / f"run-{seed}", out=None)
    fit_s = time.perf_counter() - t0
    loaded = checkpoint.load(run.model_dir)
    test_rows = [ds.rows[i] for i in te]
    num, cat = (torch.as_tensor(a) for a in vectorize_rows(loaded.schemas[ds.source], test_rows, "test"))
    single = [(num[i : i + 1], cat[i : i + 1]) for i in range(min(SINGLE_CALLS, len(te)))]
    results = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for task, kind in ((ds.supervised_task, "supervised"), (ds.novelty_task, "novelty")):
            if task is None or task not in {t["name"] for t in loaded.meta["tasks"]}:
                continue

            def score(n: torch.Tensor, c: torch.Tensor, task: str = task) -> np.ndarray:
                return score_rows(loaded.model, task, n, c, trees=loaded.trees)["scores"]

            timed = time_scoring(score, (num, cat), single)
            name = f"ours: {Path(ds.config).name} task {task!r}" + (f" (learner: {learner})" * (learner != "network"))
            name += "".join(f" {o}" for o in overrides)
            results.append(_result(ds, seed, name, kind, ds.y[te], fit_s, timed))
    finally:
        torch.set_num_threads(threads)
    return results


def _result(ds: Dataset, seed: int, model: str, kind: str, y: np.ndarray, fit_s: float, timed: dict) -> dict:
    return {
        "dataset": ds.name,
        "kind": kind,
        "model": model,
        "seed": seed,
        "n_test": len(y),
        "test_positives": int(y.sum()),
        **detection_metrics(y, timed["scores"]),
        "fit_s": fit_s,
        "score_us_batch": timed["score_us_batch"],
        "score_us_single": timed["score_us_single"],
    }


# ================================================================= report

_WITH_STD = {"roc_auc", "pr_auc", "recall_at_1pct_fpr", "recall_at_5pct_fpr"}
COLUMNS = [
    ("roc_auc", "ROC-AUC", 4),
    ("pr_auc", "PR-AUC", 4),
    ("recall_at_1pct_fpr", "recall@1%FPR", 3),
    ("recall_at_5pct_fpr", "recall@5%FPR", 3),
    ("fit_s", "fit s", 1),
    ("score_us_batch", "µs/ev batch", 2),
    ("score_us_single", "µs/ev single", 0),
]


def summarise(results: list[dict]) -> list[dict]:
    """Mean and std over seeds per (dataset, kind, model), in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["dataset"], r["kind"], r["model"]), []).append(r)
    out = []
    for (dataset, kind, model), rs in groups.items():
        row: dict[str, Any] = {"dataset": dataset, "kind": kind, "model": model, "seeds": len(rs)}
        for key, _, _ in COLUMNS:
            values = [r[key] for r in rs]
            row[key] = statistics.fmean(values)
            row[key + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(row)
    return out


def markdown(summary: list[dict]) -> str:
    head = "| dataset | task | model | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * 3 + "---:|" * len(COLUMNS)]
    for s in summary:
        cells = []
        for key, _, digits in COLUMNS:
            mean, std = s[key], s[key + "_std"]
            cells.append(f"{mean:.{digits}f} ± {std:.{digits}f}" if key in _WITH_STD else f"{mean:.{digits}f}")
        lines.append(f"| {s['dataset']} | {s['kind']} | {s['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 seed, the first 8,000 NSL-KDD rows, 6,000 fraud rows")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per dataset (default 3; 1 with --quick)")
    ap.add_argument("--datasets", default="nsl-kdd,fraud", help="comma-separated: nsl-kdd, fraud")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument(
        "--ours-set", action="append", default=[], metavar="KEY=VALUE", help="override our config (repeatable)"
    )
    ap.add_argument("--no-peers", action="store_true", help="only our model (comparing variants of it)")
    ap.add_argument("--out", type=Path, default=REPO / "build/bench/detection_compare.json")
    args = ap.parse_args(argv)
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("detection_compare: needs the bench extra: pip install '.[bench]'", file=sys.stderr)
        return 2
    seeds = args.seeds or (1 if args.quick else 3)
    wanted = {d.strip() for d in args.datasets.split(",") if d.strip()}
    datasets = []
    if "nsl-kdd" in wanted:
        datasets.append(nsl_kdd(8000 if args.quick else None))
    if "fraud" in wanted:
        datasets.append(fraud(6000 if args.quick else 12000))
    t_start = time.perf_counter()
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="jenga-compare-") as tmp:
        for ds in (d for d in datasets if d is not None):
            for seed in range(seeds):
                tr, te = stratified_split(ds.y, args.test_fraction, seed)
                print(f"{ds.name}: seed {seed}: {len(tr):,} train / {len(te):,} test rows", file=sys.stderr)
                results += run_ours(ds, tr, te, seed, Path(tmp), overrides=tuple(args.ours_set))
                if not args.no_peers:
                    results += run_peers(ds, tr, te, seed)
    summary = summarise(results)
    print(markdown(summary))
    wall = time.perf_counter() - t_start
    print(f"\n{seeds} seed(s), {wall:.0f} s wall", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "ours_set": args.ours_set,
        "quick": args.quick,
        "seeds": seeds,
        "test_fraction": args.test_fraction,
        "wall_s": wall,
    }
    args.out.write_text(json.dumps({"meta": meta, "summary": summary, "results": results}, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
