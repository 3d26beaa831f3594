"""DGA domain names: the baseline a text model at the edge has to beat (issue 13).

The baseline is the one issue 13 names: character 1-3-gram TF-IDF + logistic
regression (scikit-learn, the `[bench]` extra), trained on
`../shared/datasets/dga/train.jsonl`. It is measured two ways:

- seen families: trained on all of train.jsonl, scored on test_seen.jsonl;
- unseen families: DGA families are split into folds (seeded); each fold's
  families are removed from training and scored against benign names held
  out of training (a random 20 % of the benign rows of train.jsonl), so no
  model ever sees a name of the family it is judged on. This is the number
  that matters, and the only place to tune: the project's own held-out
  families are not in these files.

Each with the full name and with its last label (the TLD) removed, since some
DGAs are told apart by their TLD alone (the dataset's README). Metrics:
ROC-AUC, PR-AUC, recall at 1 % and 5 % FPR (threshold from the benign test
names), fit time.

Ours, in the same run and on the same rows: `examples/configs/dga.yaml` (or
--ours-config) trained with the trainer, exported with jenga-export (parity gate
included), and scored from the bundle by the agent's own Scorer (jenga_edge/score.py:
verified graphs, one onnxruntime thread, batches trimmed to their longest name),
on names vectorized by the schema's text rule. The unseen-family folds train on
the full names only (the protocol that matters); test_seen with and without the
TLD. The JSON also has the graph's size and its names/s in 1024-name batches.

    python bench/dga_compare.py --quick      # 20k training names, 2 folds: a few minutes
    python bench/dga_compare.py              # all 198,796 names, 4 folds
    python bench/dga_compare.py --no-ours    # the baseline alone
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from detection_compare import detection_metrics  # the sibling script: the same metrics as its table

REPO = Path(__file__).resolve().parents[1]
DGA = REPO.parent / "shared/datasets/dga"
OURS_CONFIG = REPO / "examples/configs/dga.yaml"
BASELINE = "char 1-3-gram TF-IDF + logistic regression"
TIMING_BATCH = 1024


def read_names(path: Path, limit: int | None = None) -> tuple[list[str], np.ndarray, list[str | None]]:
    """(names, 1 for dga, family or None) of a dataset file, in file order."""
    names, labels, families = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            names.append(row["domain"])
            labels.append(1 if row["label"] == "dga" else 0)
            families.append(row.get("family"))
            if limit is not None and len(names) >= limit:
                break
    return names, np.asarray(labels, dtype=np.int64), families


def without_tld(name: str) -> str:
    """The name without its last label: what is left when the TLD cannot help."""
    head, dot, _ = name.rstrip(".").rpartition(".")
    return head if dot else name


def family_folds(families: list[str | None], k: int, seed: int) -> list[list[str]]:
    """DGA families split into k folds (seeded) as `jenga-train holdout` splits attack
    types (trainer/holdout.py's make_folds); benign rows (None) belong to none."""
    from trainer.holdout import make_folds

    return make_folds(sorted({f for f in families if f is not None}), k, seed)


def baseline_fit_score(train: list[str], y: np.ndarray, test: list[str]) -> tuple[np.ndarray, float]:
    """Char 1-3-gram TF-IDF + logistic regression: P(dga) of the test names, fit seconds."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)
    model = LogisticRegression(max_iter=1000, C=10.0)
    model.fit(vec.fit_transform(train), y)
    fit_s = time.perf_counter() - t0
    return model.predict_proba(vec.transform(test))[:, 1], fit_s


def ours_fit_score(
    args: argparse.Namespace, rows: list[dict], test: list[str], tag: str
) -> tuple[np.ndarray, float, dict]:
    """Train the text model on `rows` ({domain, label, family}), export it, score `test`
    with the agent's Scorer: (P(dga), fit seconds incl. export, graph facts)."""
    import torch
    from detection_compare import experiment_config

    from export.bundle_writer import ExportOptions, export_bundle
    from trainer.run import run_experiment
    from trainer.synthetic import write

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    data = write(rows, args.tmp / f"train-{tag}.jsonl")
    cfg = experiment_config(args.ours_config, "dns", data, args.seed, tuple(args.ours_set))
    t0 = time.perf_counter()
    run = run_experiment(cfg, args.tmp / f"run-{tag}", out=None)
    bundle = args.tmp / f"bundle-{tag}"
    manifest = export_bundle(run.model_dir, bundle, ExportOptions(tasks=["dga"], force=True), log=lambda _: None)
    fit_s = time.perf_counter() - t0
    scores, facts = edge_scores(bundle, test)
    facts.update(graph_bytes=manifest.tasks[0].size_bytes, parity=manifest.tasks[0].parity)
    return scores, fit_s, facts


def edge_scores(bundle: Path, names: list[str]) -> tuple[np.ndarray, dict]:
    """P(dga) of `names` as the agent computes it, and the scorer's names/s (1,024-name
    batches, vectorizing excluded: the agent's decoder does that part)."""
    from jenga_edge.bundle import verify_bundle
    from jenga_edge.score import Scorer

    scorer = Scorer(verify_bundle(bundle), ["dga"])
    schema = scorer.schema
    rows = [{"domain": n} for n in names]
    num, cat = schema.vectorize(rows)
    text = schema.vectorize_text(rows)
    out = np.empty(len(names), dtype=np.float32)
    busy = 0.0
    for i in range(0, len(names), TIMING_BATCH):
        part = slice(i, i + TIMING_BATCH)
        t0 = time.perf_counter()
        out[part] = scorer.score(num[part], cat[part], text[0][part], text[1][part]).score["dga"]
        busy += time.perf_counter() - t0
    return out, {"scorer_names_per_s": len(names) / busy if busy else float("nan")}


def unseen_splits(
    families: list[str | None], k: int, seed: int, benign_test: float = 0.2
) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
    """Per fold: (training rows, test rows, held-out families). Test rows are the fold's
    DGA names and a seeded 20 % of the benign names; training is every other row."""
    fam = np.asarray([f if f is not None else "" for f in families], dtype=object)
    benign = np.flatnonzero(fam == "")
    held_benign = np.random.default_rng(seed).permutation(benign)[: round(benign_test * len(benign))]
    out = []
    for fold in family_folds(families, k, seed):
        unseen = np.flatnonzero(np.isin(fam, fold))
        test = np.concatenate([held_benign, unseen])
        train = np.setdiff1d(np.arange(len(fam)), test)
        out.append((train, test, fold))
    return out


def run(args: argparse.Namespace) -> dict:
    limit = 20_000 if args.quick else None
    names, y, families = read_names(args.data / "train.jsonl", limit)
    # Tuning runs (--unseen-only) never open test_seen.jsonl.
    seen_limit = 5_000 if args.quick else None
    tnames, ty, _ = read_names(args.data / "test_seen.jsonl", seen_limit) if not args.unseen_only else ([], y[:0], [])
    rows: list[dict] = []
    models = ["baseline"] * args.baseline + ["ours"] * args.ours
    for tld in (True, False):
        view = (lambda n: n) if tld else without_tld
        train, test = [view(n) for n in names], [view(n) for n in tnames]
        for model in models if not args.unseen_only else []:
            scores, fit_s, facts = fit_score(args, model, train, y, families, test, f"seen-{tld}")
            m = detection_metrics(ty, scores)
            rows.append(
                {"protocol": "seen families (test_seen)", "model": model, "tld": tld, "fit_s": fit_s, **m, **facts}
            )
        if not tld and args.ours:  # ours: unseen families on the full names (what an edge sees)
            models = ["baseline"] * args.baseline
        for fold, (tr, te, held) in enumerate(unseen_splits(families, args.folds, args.seed), 1):
            for model in models:
                fit = [train[i] for i in tr]
                scores, fit_s, facts = fit_score(
                    args, model, fit, y[tr], [families[i] for i in tr], [train[i] for i in te], f"fold{fold}-{tld}"
                )
                m = detection_metrics(y[te], scores)
                rows.append(
                    {
                        "protocol": "unseen families",
                        "model": model,
                        "fold": fold,
                        "held_out": held,
                        "tld": tld,
                        "fit_s": fit_s,
                        **m,
                        **facts,
                    }
                )
            print(f"fold {fold} ({'with' if tld else 'without'} TLD): {len(held)} families held out", file=sys.stderr)
    return {"rows": rows, "train_rows": len(names), "test_seen_rows": len(tnames)}


def fit_score(
    args: argparse.Namespace,
    model: str,
    train: list[str],
    y: np.ndarray,
    families: list[str | None],
    test: list[str],
    tag: str,
) -> tuple[np.ndarray, float, dict]:
    if model == "baseline":
        scores, fit_s = baseline_fit_score(train, y, test)
        return scores, fit_s, {}
    rows = [
        {"domain": n, "label": "dga" if t else "benign", "family": f} for n, t, f in zip(train, y.tolist(), families)
    ]
    return ours_fit_score(args, rows, test, tag)


COLUMNS = ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "recall_at_5pct_fpr")


def summary(rows: list[dict]) -> list[dict]:
    """Mean ± std over folds per (protocol, model, tld)."""
    out = []
    for key in dict.fromkeys((r["protocol"], r.get("model", "baseline"), r["tld"]) for r in rows):
        group = [r for r in rows if (r["protocol"], r.get("model", "baseline"), r["tld"]) == key]
        line = {"protocol": key[0], "model": key[1], "tld": key[2], "n": len(group)}
        for c in COLUMNS:
            vals = [r[c] for r in group if not np.isnan(r[c])]
            line[c] = statistics.fmean(vals) if vals else float("nan")
            line[c + "_std"] = statistics.pstdev(vals) if len(vals) > 1 else 0.0
        out.append(line)
    return out


def markdown(lines: list[dict]) -> str:
    head = "| protocol | TLD | model | ROC-AUC | PR-AUC | recall at 1 % FPR | recall at 5 % FPR |"
    out = [head, "|---|---|---|---:|---:|---:|---:|"]
    for s in lines:
        cells = " | ".join(f"{s[c]:.4f} ± {s[c + '_std']:.4f}" for c in COLUMNS)
        tld = "with" if s["tld"] else "without"
        name = s["protocol"] + (f" ({s['n']} folds)" if s["n"] > 1 else "")
        model = BASELINE if s.get("model", "baseline") == "baseline" else f"ours ({OURS_NAME})"
        out.append(f"| {name} | {tld} | {model} | {cells} |")
    return "\n".join(out)


OURS_NAME = "byte CNN in the bundle, scored by the agent's Scorer"


def fold_markdown(rows: list[dict]) -> str:
    """Recall at 1 % FPR per unseen-family fold, baseline next to ours."""
    folds = sorted({r["fold"] for r in rows if r["protocol"] == "unseen families" and r["tld"]})
    out = ["| fold | held-out families | baseline recall@1%FPR | ours recall@1%FPR |", "|---:|---:|---:|---:|"]
    for k in folds:
        got = {r.get("model", "baseline"): r for r in rows if r.get("fold") == k and r["tld"]}
        cells = [f"{got[m]['recall_at_1pct_fpr']:.3f}" if m in got else "-" for m in ("baseline", "ours")]
        out.append(f"| {k} | {len(next(iter(got.values()))['held_out'])} | {cells[0]} | {cells[1]} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20,000 training names, 5,000 test names, 2 folds")
    ap.add_argument("--data", type=Path, default=DGA, help="the dga dataset folder (train.jsonl, test_seen.jsonl)")
    ap.add_argument("--folds", type=int, default=None, help="unseen-family folds (default 4; 2 with --quick)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the family folds and the benign test rows")
    ap.add_argument("--out", type=Path, default=REPO / "build/bench/dga_compare.json")
    ap.add_argument("--no-ours", dest="ours", action="store_false", help="the baseline alone")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false", help="our model alone")
    ap.add_argument("--ours-config", type=Path, default=OURS_CONFIG, help="our experiment (source `dns`, task `dga`)")
    ap.add_argument("--ours-set", action="append", default=[], metavar="KEY=VALUE", help="as jenga-train --set")
    ap.add_argument(
        "--unseen-only",
        action="store_true",
        help="only the unseen-family folds (for tuning: test_seen.jsonl is neither trained for nor scored)",
    )
    ap.add_argument("--torch-threads", type=int, default=0, help="torch threads while training (0: torch's default)")
    ap.add_argument("--tmp", type=Path, default=REPO / "build/bench/dga_compare", help="runs and bundles go here")
    args = ap.parse_args(argv)
    args.folds = args.folds or (2 if args.quick else 4)
    try:
        if args.baseline:
            import sklearn  # noqa: F401
    except ImportError:
        print(
            "dga_compare: the baseline needs the bench extra: pip install '.[bench]' (or --no-baseline)",
            file=sys.stderr,
        )
        return 2
    if not (args.data / "train.jsonl").is_file():
        print(f"dga_compare: {args.data / 'train.jsonl'}: not found (--data names the dataset folder)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    result = run(args)
    result["wall_s"] = time.perf_counter() - t0
    result["summary"] = summary(result["rows"])
    print(markdown(result["summary"]))
    print("\nrecall at 1 % FPR per unseen-family fold (full names):\n" + fold_markdown(result["rows"]))
    for r in result["rows"]:
        if r.get("model") == "ours" and r["protocol"].startswith("seen") and r["tld"]:
            print(
                f"\nours: graph {r['graph_bytes']:,} bytes, scorer {r['scorer_names_per_s']:,.0f} names/s (one thread)"
            )
    print(f"\n{result['train_rows']:,} training names, run time {result['wall_s']:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
