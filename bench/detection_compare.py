"""Our model next to the models a user would pick instead, on the same splits.

Datasets (`--datasets`, default all that exist here), each under one protocol:

- nsl-kdd: NSL-KDD 20 % file, one stratified 80/20 random split per seed;
- nsl-kdd-holdout: the same split, and attack types held out in folds made by
  trainer/holdout.py (the folds `jenga-train holdout` makes for the config's
  training.seed): each fold's types are removed from training, and every model
  is judged on those unseen attacks against the test split's normal rows;
- nab: NAB series (../shared/datasets/nab/) split by time: the earlier 60 %
  of each series trains, the later 40 % tests; rows inside NAB's labelled
  anomaly windows are the positives;
- fraud: the generated fraud rows, stratified 80/20;
- fraud-table: a public fraud table given with --fraud-table (see bench/README.md);
- dga: measured by bench/dga_compare.py (text models, family-held-out folds); here a line says so.

Every model fits on the same training rows and is scored on the same test rows:

- ours: the shipped example config (examples/configs/*.yaml), trained with the
  project's trainer (`run_experiment`, its own validation split carved out of
  the training rows, as `jenga-train` does), test rows scored with the saved
  best_model through the trainer's inference (`vectorize_rows` + `score_rows`);
  timed as the edge runs it: the task's ONNX graph from an exported bundle in
  onnxruntime (torch eager timing kept in the JSON);
- peers (the `[bench]` extra): logistic regression (one-hot categoricals,
  standardised numerics), HistGradientBoosting and LightGBM (native
  categoricals), XGBoost when it is installed; IsolationForest, fitted on the
  normal training rows only, next to our novelty task. Library defaults: no
  tuning, for them or for us.

Metrics on the test rows: ROC-AUC, PR-AUC (average precision), recall at 1 %
and 5 % FPR (threshold from the test negatives' scores), fit time, and scoring
time per event, one thread, on rows already encoded as each model's input,
in a batch of all test rows and one event at a time (median). Prints mean ±
std over seeds (and folds); writes JSON.

    python bench/detection_compare.py --quick     # 1 seed, fewer rows, 2 folds: ~2 min on 2 cores
    python bench/detection_compare.py             # 3 seeds, 4 folds, 3 NAB series
    python bench/detection_compare.py --quick --no-peers --ours-set model.ensemble=4   # a variant of ours
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
KDD = REPO.parent / "shared/datasets/nsl-kdd/KDDTrain+_20Percent.txt"
NAB = REPO.parent / "shared/datasets/nab"
NAB_SERIES = (  # each has a labelled anomaly window in its earlier 60 % and its later 40 %
    "machine_temperature_system_failure",
    "ambient_temperature_system_failure",
    "ec2_request_latency_system_failure",
)
NAB_TEST_FRACTION = 0.4
LOOSE_ATOL = 1e-3  # jenga-export --atol for timing when the default parity gate refuses
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
            self.onehot = (  # none without categoricals (NAB): OneHotEncoder refuses zero columns
                OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(np.nan_to_num(cat, nan=-1))
                if cat.shape[1]
                else None
            )
        z = np.clip(self.scale.transform(self.imp.transform(num)), -10, 10)  # heavy tails: bytes counters
        if self.onehot is None:
            return z
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
    name: str  # says the protocol too: it is the table's first column
    rows: list[dict]
    y: np.ndarray  # 1 = attack / fraud / anomaly
    config: Path  # the shipped experiment file
    source: str  # its source name
    supervised_task: str | None
    novelty_task: str | None
    exclude: list[str]  # never features: labels, annotations
    split: str = "random"  # random (stratified) | holdout (unseen attack types) | time
    features: list[str] | None = None  # the peers' inputs (default: every column but `exclude`)
    records: list[dict] | None = None  # what our trainer reads, row for row (default: rows)
    folds: list[list[str]] = field(default_factory=list)  # holdout: the attack types of each fold
    group_column: str = ""  # holdout: the column those types are read from
    time_column: str = ""  # time: the timestamp column


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


def nsl_kdd_holdout(base: Dataset, k: int, tmp: Path) -> Dataset:
    """The same rows under the unseen-attack protocol, with `jenga-train holdout`'s folds."""
    column, folds = holdout_folds(base, k, tmp)
    name = f"{base.name}, unseen attack types ({len(folds)} folds)"
    return replace(base, name=name, split="holdout", folds=folds, group_column=column)


def holdout_folds(ds: Dataset, k: int, tmp: Path) -> tuple[str, list[list[str]]]:
    """The attack-type folds `jenga-train holdout --folds k` makes for this config on these
    rows: trainer/holdout.py's own attack_groups and make_folds, seeded by the config's
    training.seed (not the bench's seeds), so every seed and model meets the same folds."""
    from trainer.holdout import attack_groups, make_folds
    from trainer.synthetic import write

    assert ds.supervised_task is not None
    cfg = experiment_config(ds.config, ds.source, write(ds.records or ds.rows, tmp / "holdout-rows.jsonl"))
    column, groups = attack_groups(cfg, ds.supervised_task)
    return column, make_folds(groups, k, cfg.training.seed)


def fraud(n: int) -> Dataset:
    from trainer.synthetic import generate

    rows = generate("fraud", n, seed=12)
    y = np.array([int(r["label"]) for r in rows], dtype=np.int64)
    return Dataset(
        f"fraud (generated, {n:,} rows)", rows, y, REPO / "examples/configs/fraud.yaml", "tx", "fraud", None, ["label"]
    )


def fraud_table(path: Path, label: str, limit: int | None) -> Dataset:
    """A fraud table of your own (CSV, JSON Lines or JSON; a 0/1 `label` column), trained
    with the shipped fraud config like the generated rows (bench/README.md: what was searched
    for a public one and why none ships)."""
    from trainer.readers import read_rows

    rows = read_rows(path, limit=limit)
    if label not in rows[0]:
        raise SystemExit(f"detection_compare: --fraud-table {path}: no column {label!r} (--fraud-label)")
    # fraud.yaml reads its label from `label`: the table's column is renamed to it
    rows = [{**{k: v for k, v in r.items() if k != label}, "label": int(r[label])} for r in rows]
    y = np.array([r["label"] for r in rows], dtype=np.int64)
    name = f"{path.name} ({len(rows):,} rows, {y.mean():.2%} fraud)"
    return Dataset(name, rows, y, REPO / "examples/configs/fraud.yaml", "tx", "fraud", None, ["label"])


def nab(series: str, tmp: Path) -> Dataset | None:
    """One NAB series split by time. Our trainer reads the raw readings and computes the
    config's window features itself; the peers and the test rows get the same features
    from the same event model run over the whole series (windows look back only, so a
    test row's features never see a later reading)."""
    from trainer.dataset import read_source
    from trainer.synthetic import write

    if not NAB.is_dir():
        print(f"{NAB}: not found, NAB left out", file=sys.stderr)
        return None
    spec = importlib.util.spec_from_file_location("nab_prepare", REPO / "examples/nab_prepare.py")
    assert spec and spec.loader
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    records = prepare.rows(NAB, series)
    config = REPO / "examples/configs/nab_machine_temperature.yaml"
    cfg = experiment_config(config, "nab", write(records, tmp / f"nab-{series}.jsonl"))
    rows = read_source(cfg, "nab")
    # Row i must be reading i: our trainer reads records[train], the peers and tests rows[...].
    pairs = zip(rows, records)
    if len(rows) != len(records) or any((a["timestamp"], a["value"]) != (b["timestamp"], b["value"]) for a, b in pairs):
        print(f"NAB {series}: the event model dropped or reordered readings, left out", file=sys.stderr)
        return None
    y = np.array([r["label"] == "anomaly" for r in rows], dtype=np.int64)
    name = f"NAB {series} (time split: earlier {1 - NAB_TEST_FRACTION:.0%} trains, later {NAB_TEST_FRACTION:.0%} tests)"
    features = list(cfg.sources["nab"].features or [])
    return Dataset(
        name, rows, y, config, "nab", None, "novelty", ["label"], "time", features, records, time_column="timestamp"
    )


def experiment_config(
    config: Path, source: str, data: Path, seed: int | None = None, overrides: tuple[str, ...] = ()
) -> Any:
    """A shipped experiment file as is, but for its data (`data`, JSON Lines), its seed and
    `overrides` (--ours-set: the same KEY=VALUE as jenga-train --set, a variant of the config)."""
    from jenga_edge.contract.typed import apply_overrides
    from trainer.config import config_from_dict

    raw = yaml.safe_load(config.read_text())
    src = raw["sources"][source]
    src.pop("columns", None)  # the rows are JSON objects now
    src.update(path=str(data), format="jsonl")
    raw["training"].update(progress=False, **({} if seed is None else {"seed": seed}))
    return config_from_dict(apply_overrides(raw, list(overrides)))


# ================================================================= splits


def splits(ds: Dataset, seed: int, test_fraction: float) -> list[tuple[np.ndarray, np.ndarray, dict]]:
    """(train rows, test rows, what identifies the split) for one seed."""
    if ds.split == "time":
        return [(*time_holdout(ds, NAB_TEST_FRACTION), {})]
    tr, te = stratified_split(ds.y, test_fraction, seed)
    if ds.split == "random":
        return [(tr, te, {})]
    return [
        (*holdout_split(ds, tr, te, set(held)), {"fold": i + 1, "held_out": held}) for i, held in enumerate(ds.folds)
    ]


def holdout_split(ds: Dataset, tr: np.ndarray, te: np.ndarray, held: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """Training rows without any row of a held-out type; test rows: the test split's normal
    rows and every row of a held-out type, none of which any model trained on."""
    from jenga_edge.contract.schema import category_key

    is_held = np.array([category_key(r.get(ds.group_column)) in held for r in ds.rows])
    test = np.concatenate([te[(ds.y[te] == 0) & ~is_held[te]], np.flatnonzero(is_held)])
    return tr[~is_held[tr]], np.sort(test)


def time_holdout(ds: Dataset, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The trainer's own time split: the latest `test_fraction` of the rows by timestamp test."""
    from trainer.dataset import time_split, timestamps

    return time_split(timestamps(ds.rows, ds.time_column, ds.name), test_fraction)


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


def run_peers(ds: Dataset, tr: np.ndarray, te: np.ndarray, seed: int, extra: dict | None = None) -> list[dict]:
    feats = ds.features or [f for f in ds.rows[0] if f not in ds.exclude]
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
        if not peer.novelty and len(np.unique(y_tr)) < 2:  # no labelled positives before the split
            continue
        model = peer.build(enc)
        keep = y_tr == 0 if peer.novelty else np.ones(len(tr), bool)
        t0 = time.perf_counter()
        model.fit(num_tr[keep], cat_tr[keep], y_tr[keep])
        fit_s = time.perf_counter() - t0
        timed = time_scoring(model.score, (num_te, cat_te), single)
        kind = "novelty" if peer.novelty else "supervised"
        results.append(_result(ds, seed, peer.name, kind, y_te, fit_s, timed, extra))
    return results


def run_ours(
    ds: Dataset,
    tr: np.ndarray,
    te: np.ndarray,
    seed: int,
    tmp: Path,
    extra: dict | None = None,
    edge: bool = True,
    learner: str | dict = "network",
    overrides: tuple[str, ...] = (),
) -> list[dict]:
    """Train the shipped config on the training rows; score the test rows with the trainer's
    inference (the metrics), and time the exported ONNX graph in onnxruntime (`edge`) and
    torch eager. learner lightgbm: the supervised task alone, with `learner: lightgbm`
    (trainer/trees.py); overrides: --ours-set."""
    import torch

    from trainer import checkpoint
    from trainer.dataset import vectorize_rows
    from trainer.predict import score_rows
    from trainer.run import run_experiment
    from trainer.synthetic import write

    tag = f"{seed}-{extra['fold']}" if extra else str(seed)
    if learner != "network" or overrides:  # variants of one seed train into directories of their own
        tag += "-" + hashlib.sha256(json.dumps([learner, overrides]).encode()).hexdigest()[:8]
    train_file = write([(ds.records or ds.rows)[i] for i in tr], tmp / f"train-{tag}.jsonl")
    if learner != "network":
        overrides = (*overrides, *_learner_overrides(ds, learner))
    cfg = experiment_config(ds.config, ds.source, train_file, seed, overrides)
    t0 = time.perf_counter()
    run = run_experiment(cfg, tmp / f"run-{tag}", out=None)
    fit_s = time.perf_counter() - t0
    loaded = checkpoint.load(run.model_dir)
    trained = {t["name"] for t in loaded.meta["tasks"]}
    tasks = [(t, k) for t, k in ((ds.supervised_task, "supervised"), (ds.novelty_task, "novelty")) if t in trained]
    num, cat = vectorize_rows(loaded.schemas[ds.source], [ds.rows[i] for i in te], "test")
    onnx = {}
    if edge:
        try:
            onnx = edge_scorers(run.model_dir, [t for t, _ in tasks], tmp / f"bundle-{tag}")
        except Exception as exc:  # noqa: BLE001 -- a failed export loses the edge timing, not the run
            print(f"{ds.name}: seed {seed}: export for onnxruntime timing failed: {exc}", file=sys.stderr)
    tnum, tcat = torch.as_tensor(num), torch.as_tensor(cat)
    results = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for task, kind in tasks:

            def score(n: torch.Tensor, c: torch.Tensor, task: str = task) -> np.ndarray:
                return score_rows(loaded.model, task, n, c, trees=loaded.trees)["scores"]

            eager = time_scoring(score, (tnum, tcat), [(tnum[i : i + 1], tcat[i : i + 1]) for i in range(_n1(te))])
            # The table's µs for ours are onnxruntime's, as the edge runs it; a run without
            # an exported bundle (holdout folds after the first) leaves them out (NaN).
            timed = {"scores": eager["scores"], "score_us_batch": np.nan, "score_us_single": np.nan}
            if task in onnx:
                ort_timed = time_scoring(
                    onnx[task], (num, cat), [(num[i : i + 1], cat[i : i + 1]) for i in range(_n1(te))]
                )
                timed.update(score_us_batch=ort_timed["score_us_batch"], score_us_single=ort_timed["score_us_single"])
                timed["onnx_vs_torch_max_abs"] = float(np.max(np.abs(ort_timed["scores"] - eager["scores"])))
            timed["torch_us_batch"], timed["torch_us_single"] = eager["score_us_batch"], eager["score_us_single"]
            name = f"ours: {Path(ds.config).name} task {task!r}" + (f" (learner: {learner})" * (learner != "network"))
            name += "".join(f" {o}" for o in overrides if not o.startswith("tasks="))
            results.append(_result(ds, seed, name, kind, ds.y[te], fit_s, timed, extra))
    finally:
        torch.set_num_threads(threads)
    return results


def _learner_overrides(ds: Dataset, learner: str | dict) -> tuple[str, ...]:
    """Only the supervised task, with a tree learner: `tasks=[...]` as a --set would give it."""
    raw = yaml.safe_load(ds.config.read_text())
    task = next(t for t in raw["tasks"] if t["name"] == ds.supervised_task)
    return (f"tasks={json.dumps([dict(task, learner=learner)])}",)


def _n1(te: np.ndarray) -> int:
    return min(SINGLE_CALLS, len(te))


def edge_scorers(model_dir: Path, tasks: list[str], bundle: Path) -> dict[str, Callable]:
    """task -> scores from its ONNX graph in a bundle `jenga-export` writes (parity gate
    included), run by onnxruntime with one thread, as the agent does."""
    import onnxruntime as ort

    from export.bundle_writer import ExportOptions, ParityError, export_bundle

    try:
        manifest = export_bundle(model_dir, bundle, ExportOptions(tasks=tasks, force=True), log=lambda _: None)
    except ParityError as exc:
        # Timing needs a graph, not the gate: reconstruction errors of raw-scale readings
        # (NAB temperatures) miss the default 1e-5 by a hair. Said on stderr; the scores
        # in the table are torch's either way.
        print(f"export: {exc}; exported again with --atol {LOOSE_ATOL:g} for timing only", file=sys.stderr)
        opts = ExportOptions(tasks=tasks, force=True, atol=LOOSE_ATOL)
        manifest = export_bundle(model_dir, bundle, opts, log=lambda _: None)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    out = {}
    for t in manifest.tasks:
        sess = ort.InferenceSession(str(bundle / t.file), opts, providers=["CPUExecutionProvider"])
        inputs = {i.name for i in sess.get_inputs()}
        score_name = next(o.name for o in t.outputs if o.role == "score")

        def score(num: np.ndarray, cat: np.ndarray, sess: Any = sess, inputs: set = inputs, name: str = score_name):
            feeds = {k: v for k, v in (("numeric", num), ("categorical", cat)) if k in inputs}
            return sess.run([name], feeds)[0]

        out[t.name] = score
    return out


def _result(
    ds: Dataset, seed: int, model: str, kind: str, y: np.ndarray, fit_s: float, timed: dict, extra: dict | None
) -> dict:
    return {
        "dataset": ds.name,
        "kind": kind,
        "model": model,
        "seed": seed,
        **(extra or {}),
        "n_test": len(y),
        "test_positives": int(y.sum()),
        **detection_metrics(y, timed["scores"]),
        "fit_s": fit_s,
        **{k: v for k, v in timed.items() if k != "scores"},
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
    """Mean and std over runs (seeds, and folds in the holdout) per (dataset, kind, model),
    in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["dataset"], r["kind"], r["model"]), []).append(r)
    out = []
    for (dataset, kind, model), rs in groups.items():
        seeds = len({r.get("seed") for r in rs})
        row: dict[str, Any] = {"dataset": dataset, "kind": kind, "model": model, "seeds": seeds, "runs": len(rs)}
        for key, _, _ in COLUMNS:
            values = [r[key] for r in rs if r[key] == r[key]]  # NaN: not timed in that run
            row[key] = statistics.fmean(values) if values else float("nan")
            row[key + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(row)
    return out


def fold_summary(results: list[dict]) -> list[dict]:
    """The holdout per fold: mean over seeds of the threshold-free metrics, per model."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        if "fold" in r:
            groups.setdefault((r["dataset"], r["kind"], r["model"], r["fold"]), []).append(r)
    out = []
    for (dataset, kind, model, fold), rs in groups.items():
        row = {"dataset": dataset, "kind": kind, "model": model, "fold": fold, "held_out": rs[0]["held_out"]}
        row["unseen_rows"] = rs[0]["test_positives"]
        row.update({key: statistics.fmean(r[key] for r in rs) for key in FOLD_COLUMNS})
        out.append(row)
    return sorted(out, key=lambda r: (r["dataset"], r["fold"]))


FOLD_COLUMNS = ["roc_auc", "pr_auc", "recall_at_1pct_fpr", "recall_at_5pct_fpr"]


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


def fold_markdown(folds: list[dict]) -> str:
    lines = [
        "| fold | held-out types (unseen rows) | task | model | ROC-AUC | PR-AUC | recall@1%FPR | recall@5%FPR |",
        "|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for f in folds:
        metrics = " | ".join(f"{f[k]:.{4 if 'auc' in k else 3}f}" for k in FOLD_COLUMNS)
        held = f"{', '.join(f['held_out'])} ({f['unseen_rows']:,})"
        lines.append(f"| {f['fold']} | {held} | {f['kind']} | {f['model']} | {metrics} |")
    return "\n".join(lines)


LEGEND = (
    "Mean ± std over seeds (holdout: over seeds and folds). µs/ev: scoring time per event, one thread, rows "
    "already encoded, all test rows in one call (batch) and one event per call (single, median); ours: the "
    "task's ONNX graph from an exported bundle in onnxruntime (torch eager in the JSON), peers: the library's "
    "predict. fit s, ours: the whole run_experiment (all of the config's tasks)."
)
DATASETS = ("nsl-kdd", "nsl-kdd-holdout", "nab", "fraud", "fraud-table", "dga")
PENDING = {"dga": "DGA domains (../shared/datasets/dga/): see bench/dga_compare.py (ours next to its baseline)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="1 seed, the first 8,000 NSL-KDD rows, 2 holdout folds, 6,000 fraud rows, one short NAB series",
    )
    ap.add_argument("--seeds", type=int, default=None, help="seeds per dataset (default 3; 1 with --quick)")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds run from this one (split a long run in parts)")
    ap.add_argument(
        "--merge", type=Path, nargs="+", metavar="JSON", help="no run: the tables of earlier runs' JSON files, together"
    )
    ap.add_argument(
        "--datasets",
        default="nsl-kdd,nsl-kdd-holdout,nab,fraud,dga",
        help=f"comma-separated, of: {', '.join(DATASETS)} (fraud-table is added when --fraud-table is given)",
    )
    ap.add_argument("--test-fraction", type=float, default=0.2, help="random and holdout splits")
    ap.add_argument("--folds", type=int, default=None, help="holdout folds of attack types (default 4; 2 with --quick)")
    ap.add_argument(
        "--nab-series", default=None, help=f"comma-separated NAB file names (default {','.join(NAB_SERIES)})"
    )
    ap.add_argument("--fraud-table", type=Path, help="a fraud table of your own (CSV/JSONL) as one more dataset")
    ap.add_argument("--fraud-label", default="Class", help="its 0/1 label column (default Class)")
    ap.add_argument("--fraud-rows", type=int, default=None, help="read only its first N rows")
    ap.add_argument(
        "--ours-set", action="append", default=[], metavar="KEY=VALUE", help="override our config (repeatable)"
    )
    ap.add_argument("--no-peers", action="store_true", help="only our model (comparing variants of it)")
    ap.add_argument("--out", type=Path, default=REPO / "build/bench/detection_compare.json")
    args = ap.parse_args(argv)
    if args.merge:  # tables of earlier runs: no model is fitted, so no peer library is needed
        return merge(args.merge, args.out)
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("detection_compare: needs the bench extra: pip install '.[bench]'", file=sys.stderr)
        return 2
    wanted = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if args.fraud_table and "fraud-table" not in wanted:
        wanted.append("fraud-table")
    unknown = [d for d in wanted if d not in DATASETS]
    if unknown:
        print(
            f"detection_compare: --datasets: unknown {', '.join(unknown)} (known: {', '.join(DATASETS)})",
            file=sys.stderr,
        )
        return 2
    seeds = args.seeds or (1 if args.quick else 3)
    t_start = time.perf_counter()
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="jenga-compare-") as tmp:
        for ds in load_datasets(wanted, args, Path(tmp)):
            for seed in range(args.first_seed, args.first_seed + seeds):
                for tr, te, extra in splits(ds, seed, args.test_fraction):
                    where = f", fold {extra['fold']} (holding out {', '.join(extra['held_out'])})" if extra else ""
                    print(f"{ds.name}: seed {seed}{where}: {len(tr):,} train / {len(te):,} test rows", file=sys.stderr)
                    # One exported bundle per model shape is enough to time the edge: not per fold.
                    edge = extra.get("fold", 1) == 1
                    results += run_ours(ds, tr, te, seed, Path(tmp), extra, edge, overrides=tuple(args.ours_set))
                    if not args.no_peers:
                        results += run_peers(ds, tr, te, seed, extra)
    wall = time.perf_counter() - t_start
    meta = {
        "quick": args.quick,
        "ours_set": args.ours_set,
        "seeds": list(range(args.first_seed, args.first_seed + seeds)),
        "test_fraction": args.test_fraction,
        "nab_test_fraction": NAB_TEST_FRACTION,
        "wall_s": wall,
        "pending": [PENDING[d] for d in wanted if d in PENDING],
    }
    report(results, meta, args.out)
    return 0


def report(results: list[dict], meta: dict, out: Path) -> None:
    """Print the tables and the run time; write the JSON."""
    summary, folds = summarise(results), fold_summary(results)
    print(LEGEND + "\n")
    print(markdown(summary))
    if folds:
        print("\nUnseen attack types, per fold (mean over seeds):\n")
        print(fold_markdown(folds))
    for line in meta["pending"]:
        print(f"\n{line}")
    wall = meta["wall_s"]
    print(f"\nseeds {meta['seeds']}, run time {wall:.0f} s ({wall / 60:.1f} min)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "summary": summary, "folds": folds, "results": results}, indent=2))
    print(f"wrote {out}", file=sys.stderr)


def merge(paths: list[Path], out: Path) -> int:
    """One report from runs made in parts (other datasets, other seeds): their results
    together, run times added."""
    runs = [json.loads(p.read_text()) for p in paths]
    results = [r for run in runs for r in run["results"]]
    seeds = sorted({s for run in runs for s in _seed_list(run["meta"]["seeds"])})
    pending = list(dict.fromkeys(line for run in runs for line in run["meta"].get("pending", [])))
    meta = {"merged": [str(p) for p in paths], "seeds": seeds, "pending": pending}
    meta["wall_s"] = sum(run["meta"]["wall_s"] for run in runs)
    report(results, meta, out)
    return 0


def _seed_list(seeds: int | list[int]) -> list[int]:
    return list(range(seeds)) if isinstance(seeds, int) else seeds  # an int: runs from before --first-seed


def load_datasets(wanted: list[str], args: argparse.Namespace, tmp: Path) -> list[Dataset]:
    out: list[Dataset | None] = []
    if "nsl-kdd" in wanted or "nsl-kdd-holdout" in wanted:
        kdd = nsl_kdd(8000 if args.quick else None)
        if kdd and "nsl-kdd" in wanted:
            out.append(kdd)
        if kdd and "nsl-kdd-holdout" in wanted:
            out.append(nsl_kdd_holdout(kdd, args.folds or (2 if args.quick else 4), tmp))
    if "nab" in wanted:
        default = ("ec2_request_latency_system_failure",) if args.quick else NAB_SERIES
        series = args.nab_series.split(",") if args.nab_series else default
        out += [nab(s.strip(), tmp) for s in series if s.strip()]
    if "fraud" in wanted:
        out.append(fraud(6000 if args.quick else 12000))
    if "fraud-table" in wanted:
        if not args.fraud_table:
            raise SystemExit("detection_compare: --datasets fraud-table needs --fraud-table PATH")
        out.append(fraud_table(args.fraud_table, args.fraud_label, args.fraud_rows))
    return [d for d in out if d is not None]


if __name__ == "__main__":
    sys.exit(main())
