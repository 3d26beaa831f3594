"""torch vs onnxruntime on real rows and on the cases an edge will meet.

Every case is scored by both; the figure per output is the max abs diff (as
Optimum reports it). Labels (argmax) are compared too: a flipped label is a
diff of at least 1 and fails the export like any other excess.

A case is one array per graph input, in input_specs order: (numeric,
categorical) and, for a schema with text features, (text_bytes, text_lengths).
Text values of the edge cases go through the schema's own vectorize_text
(contract/text_input.py), so they are normalized and cut exactly as the agent
does; `trim_invariance` checks that a batch trimmed to its longest text scores
as the same batch padded to text_width (the agent trims).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnxruntime as ort
import torch

from jenga_edge.contract.schema import Feature, FeatureSchema

EXTREMES = np.array([0.0, -0.0, 1e-30, -1e-30, 1e30, -1e30, 3.0e38, -3.0e38, 1e9, -1e9], dtype=np.float32)
Case = tuple[np.ndarray, ...]


def edge_cases(
    schema: FeatureSchema,
    rows_num: np.ndarray,
    rows_cat: np.ndarray,
    seed: int = 0,
    text: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Case]:
    """Named input batches: validation rows plus edge cases (text ones for a schema with text)."""
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
    cases: dict[str, Case] = {
        "validation": (rows_num, rows_cat),
        "missing_values": (missing, base_cat),
        "unseen_categories": (base_num, unseen),
        "extreme_magnitudes": (extreme.astype(np.float32), ext_cat),
        "batch_1": (rows_num[:1], rows_cat[:1]),
        "batch_1000": (rows_num[big], rows_cat[big]),
    }
    if text is None:
        return cases
    return _with_text(schema, cases, text, rows_num, rows_cat, rng)


def _with_text(
    schema: FeatureSchema,
    cases: dict[str, Case],
    text: tuple[np.ndarray, np.ndarray],
    rows_num: np.ndarray,
    rows_cat: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, Case]:
    """Every tabular case with text of real rows beside it (the validation rows' own),
    plus the text edge values, padded to text_width and trimmed to their longest."""
    data, lengths = text
    out: dict[str, Case] = {}
    for name, (num, cat) in cases.items():
        pick = np.arange(len(num)) if name in ("validation", "batch_1") else rng.integers(0, len(data), len(num))
        out[name] = (num, cat, data[pick], lengths[pick])
    edge_data, edge_len = schema.vectorize_text(text_edge_rows(schema), strict=False)
    pick = rng.integers(0, len(rows_num), len(edge_data))
    out["text_edge_values"] = (rows_num[pick], rows_cat[pick], edge_data, edge_len)
    out["text_edge_values_trimmed"] = trimmed(out["text_edge_values"])
    empty = (rows_num[pick[:4]], rows_cat[pick[:4]], edge_data[:4] * 0, edge_len[:4] * 0)
    out["text_all_empty"] = trimmed(empty)  # one byte wide: nothing but padding
    return out


def text_edge_values(feature: Feature) -> list[str | None]:
    """The values the issue names, for one text feature of max_bytes n: empty and missing,
    exactly n bytes, longer (cut), multi-byte UTF-8 (also cut mid-character), upper case
    and trailing dots (normalize dns folds them), NUL bytes, a lone surrogate."""
    n = feature.text_limit
    return [
        "",
        None,
        "a" * n,
        "b" * (n - 1),
        "c" * (n + 7),
        "é" * n,  # 2n bytes: cut at n
        "x" + "é" * n,  # cut in the middle of a character
        "例え.テスト.jp",
        "🙂" * (n // 4 + 1),
        "Example.COM.",
        "example.com",
        "WWW.xn--Bcher-kva.Example...",
        "www.xn--bcher-kva.example",
        "a\x00b\x00c",
        "\x00" * n,
        "bad\udc80surrogate",
    ]


def text_edge_rows(schema: FeatureSchema) -> list[dict]:
    """Rows holding text_edge_values, every text feature at once (row i: value i of each)."""
    values = {f.name: text_edge_values(f) for f in schema.text}
    count = max(len(v) for v in values.values())
    return [{name: vals[i % len(vals)] for name, vals in values.items()} for i in range(count)]


def trimmed(case: Case) -> Case:
    """The same rows with the bytes axis cut to the longest text (at least one byte wide)."""
    num, cat, data, lengths = case
    width = max(1, int(lengths.max()) if lengths.size else 1)
    return (num, cat, np.ascontiguousarray(data[:, :, :width]), lengths)


def trim_invariance(session: ort.InferenceSession, outputs: Sequence[str], cases: dict[str, Case]) -> dict:
    """Max abs diff per output between each text case padded to text_width and trimmed."""
    names = [i.name for i in session.get_inputs()]
    worst = {o: 0.0 for o in outputs}
    for case in cases.values():
        if len(case) < 4:
            continue
        padded = session.run(list(outputs), dict(zip(names, case)))
        short = session.run(list(outputs), dict(zip(names, trimmed(case))))
        for name, a, b in zip(outputs, padded, short):
            worst[name] = max(worst[name], _max_abs(a, b))
    return worst


def compare(
    module: torch.nn.Module,
    session: ort.InferenceSession,
    outputs: Sequence[str],
    cases: dict[str, Case],
    batch: int = 4096,
    tolerance: Callable[[list[np.ndarray]], dict[str, torch.Tensor]] | None = None,
) -> dict:
    """{output: max abs diff over all cases, 'cases': {case: {output: diff}}}.

    `tolerance` (a batch's arrays -> {output: per-row tolerance}) names outputs judged
    row by row instead of by one atol: 'ratio' then holds, per output and case, the
    largest diff over its row's tolerance (<= 1 passes), and 'tolerance' the largest
    tolerance used."""
    names = [i.name for i in session.get_inputs()]
    per_case: dict[str, dict[str, float]] = {}
    ratios: dict[str, dict[str, float]] = {}
    allowed: dict[str, float] = {}
    for case, arrays in cases.items():
        arrays = arrays[: len(names)]
        diffs = {o: 0.0 for o in outputs}
        for start in range(0, max(1, len(arrays[0])), batch):
            part = [np.ascontiguousarray(a[start : start + batch]) for a in arrays]
            with torch.no_grad():
                ref = module(*(torch.from_numpy(a) for a in part))
            ref = ref if isinstance(ref, tuple) else (ref,)
            got = session.run(list(outputs), dict(zip(names, part)))
            tol = tolerance(part) if tolerance and len(part[0]) else {}
            for name, r, g in zip(outputs, ref, got):
                diffs[name] = max(diffs[name], _max_abs(r.numpy(), g))
                if name in tol:
                    t = tol[name].numpy()
                    seen = ratios.setdefault(name, {})
                    seen[case] = max(seen.get(case, 0.0), _max_ratio(r.numpy(), g, t))
                    allowed[name] = max(allowed.get(name, 0.0), float(np.nanmax(t)))
        per_case[case] = diffs
    worst = {o: max(c[o] for c in per_case.values()) for o in outputs}
    extra = {"ratio": ratios, "tolerance": allowed} if ratios else {}
    return {**worst, "cases": per_case, **extra}


def _max_ratio(a: np.ndarray, b: np.ndarray, tol: np.ndarray) -> float:
    """The largest |a - b| / tol, row by row (equal NaNs agree, a NaN diff fails, a NaN or
    zero tolerance allows no difference)."""
    if a.shape != b.shape or tol.shape != a.shape:
        return float("inf")
    a, b = a.astype(np.float64), b.astype(np.float64)
    d = np.abs(a - b)
    d[np.isnan(a) & np.isnan(b)] = 0.0
    t = np.nan_to_num(tol.astype(np.float64), nan=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(d == 0, 0.0, d / t)
    return float(np.nan_to_num(ratio, nan=np.inf).max()) if d.size else 0.0


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    a, b = a.astype(np.float64), b.astype(np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    d = np.abs(a - b)
    d[both_nan] = 0.0
    return float(np.nan_to_num(d, nan=np.inf).max()) if d.size else 0.0
