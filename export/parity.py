"""torch vs onnxruntime on real rows and on the cases an edge will meet.

Every case is scored by both; the figure per output is the max abs diff (as
Optimum reports it). Labels (argmax) are compared too: a flipped label is a
diff of at least 1 and fails the export like any other excess.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort
import torch

from jenga_edge.contract.schema import FeatureSchema

EXTREMES = np.array([0.0, -0.0, 1e-30, -1e-30, 1e30, -1e30, 3.0e38, -3.0e38, 1e9, -1e9], dtype=np.float32)


def edge_cases(
    schema: FeatureSchema, rows_num: np.ndarray, rows_cat: np.ndarray, seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Named (numeric, categorical) batches: validation rows plus edge cases."""
    rng = np.random.default_rng(seed)
    n, m = rows_num.shape[1], rows_cat.shape[1]
    vocab = np.array([len(f.categories) for f in schema.categorical], dtype=np.int64)
    k = 64
    base_num = rows_num[rng.integers(0, len(rows_num), k)].copy()
    base_cat = rows_cat[rng.integers(0, len(rows_cat), k)].copy()
    missing = base_num.copy()
    missing[rng.random(missing.shape) < 0.5] = np.nan
    missing[0] = np.nan
    unseen = base_cat.copy()
    unseen[rng.random(unseen.shape) < 0.5] = 0  # unseen values arrive as the OOV index
    if m:
        unseen[1:] = rng.integers(0, vocab, size=(k - 1, m))  # and every valid index somewhere
    extreme = np.tile(EXTREMES, (n, 1)).T.reshape(-1, n) if n else np.zeros((len(EXTREMES), 0), np.float32)
    ext_cat = np.zeros((len(extreme), m), dtype=np.int64)
    big = rng.integers(0, len(rows_num), 1000)
    return {
        "validation": (rows_num, rows_cat),
        "missing_values": (missing, base_cat),
        "unseen_categories": (base_num, unseen),
        "extreme_magnitudes": (extreme.astype(np.float32), ext_cat),
        "batch_1": (rows_num[:1], rows_cat[:1]),
        "batch_1000": (rows_num[big], rows_cat[big]),
    }


def compare(
    module: torch.nn.Module,
    session: ort.InferenceSession,
    outputs: Sequence[str],
    cases: dict[str, tuple[np.ndarray, np.ndarray]],
    batch: int = 4096,
) -> dict:
    """{output: max abs diff over all cases, 'cases': {case: {output: diff}}}."""
    per_case: dict[str, dict[str, float]] = {}
    for case, (num, cat) in cases.items():
        diffs = {o: 0.0 for o in outputs}
        for start in range(0, max(1, len(num)), batch):
            nb, cb = num[start : start + batch], cat[start : start + batch]
            with torch.no_grad():
                ref = module(torch.from_numpy(np.ascontiguousarray(nb)), torch.from_numpy(np.ascontiguousarray(cb)))
            ref = ref if isinstance(ref, tuple) else (ref,)
            got = session.run(list(outputs), {"numeric": nb, "categorical": cb})
            for name, r, g in zip(outputs, ref, got):
                diffs[name] = max(diffs[name], _max_abs(r.numpy(), g))
        per_case[case] = diffs
    worst = {o: max(c[o] for c in per_case.values()) for o in outputs}
    return {**worst, "cases": per_case}


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    a, b = a.astype(np.float64), b.astype(np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    d = np.abs(a - b)
    d[both_nan] = 0.0
    return float(np.nan_to_num(d, nan=np.inf).max()) if d.size else 0.0
