"""Fit a FeatureSchema on training rows: column kinds, scaling, vocabularies.

Everything fitted here uses the training split only; validation and test rows
are vectorized with the result and never influence it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from jenga_edge.contract.errors import DataError, EventError
from jenga_edge.contract.schema import (
    OOV_TOKEN,
    SCHEMA_VERSION,
    TEXT_SCHEMA_VERSION,
    Feature,
    FeatureSchema,
    Kind,
    category_key,
    to_boolean,
    to_number,
)

from .config import SourceConfig, TextColumn
from .encodings import ENCODINGS, choose_auto


def select_columns(rows: Sequence[dict], cfg: SourceConfig, reserved: Iterable[str]) -> list[str]:
    """The feature columns: explicit, or every column but labels, ids and ignores."""
    seen: dict[str, None] = {}
    for row in rows[:1000]:
        seen.update(dict.fromkeys(row))
    if cfg.features is not None:
        missing = [c for c in cfg.features if c not in seen]
        if missing:
            raise DataError(f"features {missing} are not columns of the data (columns: {', '.join(seen)})")
        return list(cfg.features)
    skip = set(reserved) | set(cfg.ignore) | ({cfg.id_column} if cfg.id_column else set())
    cols = [c for c in seen if c not in skip]
    if not cols:
        raise DataError("no feature columns left after removing labels, ids and ignores")
    return cols


def infer_kind(values: Sequence[Any]) -> Kind:
    """numeric, boolean (bools or true/false strings) or categorical (other strings)."""
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not present:
        return "numeric"
    if all(isinstance(v, bool) for v in present):
        return "boolean"
    if all(isinstance(v, str) and v.strip().lower() in ("true", "false") for v in present):
        return "boolean"
    for v in present:
        try:
            to_number(v, "")
        except EventError:
            return "categorical"
    # A numeric column holding only 0 and 1 in training stays numeric: NSL-KDD's
    # wrong_fragment is 0/1 in most rows and 3 in a few attack types.
    return "numeric"


def check_column_options(columns: list[str], cfg: SourceConfig, where: str) -> None:
    """kinds/encodings naming no feature column are typos, not silent no-ops."""
    for option in ("kinds", "encodings", "text"):
        for col in getattr(cfg, option):
            if col not in columns:
                close = difflib.get_close_matches(col, columns, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise DataError(
                    f"{where}.{option}.{col}: not a feature column{hint}; feature columns: {', '.join(columns)}"
                )


def fit_schema(train_rows: Sequence[dict], columns: list[str], cfg: SourceConfig) -> FeatureSchema:
    features = []
    for col in columns:
        values = [row.get(col) for row in train_rows]
        kind = cfg.kinds.get(col) or infer_kind(values)
        if kind == "text":
            features.append(_text_feature(col, cfg))
        elif kind == "categorical":
            features.append(_fit_categorical(col, values, cfg))
        else:
            encoding = cfg.encodings.get(col, cfg.encoding)
            features.append(_fit_numeric(col, kind, values, cfg, encoding))
    return FeatureSchema(tuple(features), version=schema_version(features))


def schema_version(features: Sequence[Feature]) -> int:
    """Version 3 only for a schema with text: one without stays a version 2 schema, byte for byte."""
    return TEXT_SCHEMA_VERSION if any(f.is_text for f in features) else SCHEMA_VERSION


def _text_feature(col: str, cfg: SourceConfig) -> Feature:
    """A text column fits nothing: its settings are the config's (the graph embeds its bytes)."""
    t = cfg.text.get(col) or TextColumn()
    allow = cfg.missing.allow_missing_at_edge if t.allow_missing is None else t.allow_missing
    return Feature(col, "text", allow_missing=allow, max_bytes=t.max_bytes, normalize=t.normalize, truncate=t.truncate)


def _numbers(col: str, kind: Kind, values: Sequence[Any]) -> np.ndarray:
    convert = to_boolean if kind == "boolean" else to_number
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        try:
            missing = v is None or (isinstance(v, float) and not math.isfinite(v))
            out[i] = math.nan if missing else convert(v, col)
        except EventError as exc:
            raise DataError(
                f"column {col!r}, training row {i}: {exc} "
                f"(set sources.<name>.kinds.{col}: categorical if it is a label-like string)"
            ) from None
    return out[np.isfinite(out)]


def _fit_numeric(col: str, kind: Kind, values: Sequence[Any], cfg: SourceConfig, encoding: str) -> Feature:
    x = _numbers(col, kind, values)
    allow = cfg.missing.allow_missing_at_edge
    if x.size == 0:
        return Feature(col, kind, "none", 0.0, allow_missing=allow)
    impute = {"median": float(np.median(x)), "mean": float(x.mean()), "zero": 0.0}[cfg.missing.numeric]
    if kind == "boolean":
        return Feature(col, kind, "none", float(np.round(impute)), allow_missing=allow)
    if encoding == "auto":
        encoding = choose_auto(x)
    params = {"encoding": encoding, **ENCODINGS[encoding].fit(x, cfg.piecewise_bins)}
    return Feature(col, kind, impute=impute, allow_missing=allow, **params)


def _fit_categorical(col: str, values: Sequence[Any], cfg: SourceConfig) -> Feature:
    counts: dict[str, int] = {}
    for v in values:
        if v is not None:
            key = category_key(v)
            counts[key] = counts.get(key, 0) + 1
    # Rare values stay out so the out-of-vocabulary embedding sees real training rows.
    kept = [k for k, n in counts.items() if n >= cfg.min_category_count]
    kept.sort(key=lambda k: (-counts[k], k))
    kept = sorted(kept[: cfg.max_categories])
    return Feature(col, "categorical", categories=(OOV_TOKEN, *kept), allow_missing=cfg.missing.allow_missing_at_edge)
