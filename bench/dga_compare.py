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
names), fit time. Our byte-level text model joins the table when the text
path exists; until then its row says it is pending.

    python bench/dga_compare.py --quick      # 20k training names, 2 folds: ~1 min
    python bench/dga_compare.py              # all 198,796 names, 4 folds
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
PENDING = "ours (byte-level text model in the bundle): pending issue 13's text path; no row yet"


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
    tnames, ty, _ = read_names(args.data / "test_seen.jsonl", 5_000 if args.quick else None)
    rows: list[dict] = []
    for tld in (True, False):
        view = (lambda n: n) if tld else without_tld
        scores, fit_s = baseline_fit_score([view(n) for n in names], y, [view(n) for n in tnames])
        rows.append(
            {"protocol": "seen families (test_seen)", "tld": tld, "fit_s": fit_s, **detection_metrics(ty, scores)}
        )
        for fold, (tr, te, held) in enumerate(unseen_splits(families, args.folds, args.seed), 1):
            scores, fit_s = baseline_fit_score([view(names[i]) for i in tr], y[tr], [view(names[i]) for i in te])
            m = detection_metrics(y[te], scores)
            rows.append(
                {"protocol": "unseen families", "fold": fold, "held_out": held, "tld": tld, "fit_s": fit_s, **m}
            )
            print(f"fold {fold} ({'with' if tld else 'without'} TLD): {len(held)} families held out", file=sys.stderr)
    return {"rows": rows, "train_rows": len(names), "test_seen_rows": len(tnames)}


COLUMNS = ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "recall_at_5pct_fpr")


def summary(rows: list[dict]) -> list[dict]:
    """Mean ± std over folds per (protocol, tld)."""
    out = []
    for key in dict.fromkeys((r["protocol"], r["tld"]) for r in rows):
        group = [r for r in rows if (r["protocol"], r["tld"]) == key]
        line = {"protocol": key[0], "tld": key[1], "n": len(group)}
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
        out.append(f"| {name} | {tld} | char 1-3-gram TF-IDF + logistic regression | {cells} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20,000 training names, 5,000 test names, 2 folds")
    ap.add_argument("--data", type=Path, default=DGA, help="the dga dataset folder (train.jsonl, test_seen.jsonl)")
    ap.add_argument("--folds", type=int, default=None, help="unseen-family folds (default 4; 2 with --quick)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the family folds and the benign test rows")
    ap.add_argument("--out", type=Path, default=REPO / "build/bench/dga_compare.json")
    args = ap.parse_args(argv)
    args.folds = args.folds or (2 if args.quick else 4)
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("dga_compare: needs the bench extra: pip install '.[bench]'", file=sys.stderr)
        return 2
    if not (args.data / "train.jsonl").is_file():
        print(f"dga_compare: {args.data / 'train.jsonl'}: not found (--data names the dataset folder)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    result = run(args)
    result["wall_s"] = time.perf_counter() - t0
    result["summary"] = summary(result["rows"])
    result["pending"] = PENDING
    print(markdown(result["summary"]))
    print(f"\n{PENDING}")
    print(f"\n{result['train_rows']:,} training names, run time {result['wall_s']:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
