"""`learner: lightgbm` (trainer/trees.py) next to the LightGBM peer, on detection_compare's splits.

Same datasets, same stratified 80/20 splits and metrics as bench/detection_compare.py; only
two models: our supervised task with `learner: lightgbm` (its own validation split carved out
of the training rows, early stopping, balanced class weights, threshold rule, saved and scored
through the trainer's inference) and the LightGBM peer (library defaults, all training rows).
Same library, so the two should match. Scoring time here is the booster's predict; the
exported graph's cost is bench/tree_cost.py's.

    python bench/trees_compare.py              # 3 seeds, NSL-KDD random split and fraud
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import detection_compare as dc  # the sibling script, not a package


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3, help="seeds per dataset")
    ap.add_argument("--datasets", default="nsl-kdd,fraud", help="comma-separated: nsl-kdd, fraud")
    ap.add_argument(
        "--refit",
        action="store_true",
        help="also ours with learner.refit (boosted again on training + validation rows after early stopping)",
    )
    ap.add_argument("--out", type=Path, default=dc.REPO / "build/bench/trees_compare.json")
    args = ap.parse_args(argv)
    wanted = {d.strip() for d in args.datasets.split(",")}
    datasets = [dc.nsl_kdd(None) if "nsl-kdd" in wanted else None, dc.fraud(12000) if "fraud" in wanted else None]
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="jenga-trees-") as tmp:
        for ds in (d for d in datasets if d is not None):
            for seed in range(args.seeds):
                tr, te = dc.stratified_split(ds.y, 0.2, seed)
                print(f"{ds.name}: seed {seed}", file=sys.stderr)
                results += dc.run_ours(ds, tr, te, seed, Path(tmp), edge=False, learner="lightgbm")
                if args.refit:
                    refit = {"kind": "lightgbm", "refit": True}
                    results += dc.run_ours(ds, tr, te, seed, Path(tmp), edge=False, learner=refit)
                results += [r for r in dc.run_peers(ds, tr, te, seed) if r["model"] == "LightGBM"]
    summary = dc.summarise(results)
    print(dc.markdown(summary))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
