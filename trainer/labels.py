"""Turn raw label values into class indices, as each task's LabelConfig says.

Raw values are compared by their vocabulary key (`category_key`), so the YAML
`positive_labels: [1]` matches 1, 1.0 and "1" in the data alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from jenga_edge.contract.errors import DataError
from jenga_edge.contract.schema import category_key

from .config import TaskConfig

DROP = -1
_BOOL_KEYS = {"0": 0, "1": 1, "false": 0, "true": 1}


@dataclass(frozen=True)
class LabelMap:
    """The fitted mapping; saved with the model so predictions can be named."""

    classes: tuple[str, ...]
    lookup: dict[str, int]  # raw key -> class index
    binary: bool
    unmapped: str = "error"
    default: int | None = None  # class of any value not in lookup ("all but normal")

    def encode(self, raw: Sequence[Any], column: str) -> np.ndarray:
        y = np.empty(len(raw), dtype=np.int64)
        for i, value in enumerate(raw):
            key = None if value is None else category_key(value)
            idx = self.lookup.get(key, self.default) if key is not None else None
            if idx is None:
                if self.unmapped == "drop":
                    idx = DROP
                else:
                    raise DataError(
                        f"label column {column!r}, row {i}: value {value!r} maps to no "
                        f"class (known: {', '.join(sorted(self.lookup)[:12])}); add it "
                        "to the label config or set unmapped: drop"
                    )
            y[i] = idx
        return y

    def to_json(self) -> dict:
        return {
            "classes": list(self.classes),
            "lookup": self.lookup,
            "binary": self.binary,
            "unmapped": self.unmapped,
            "default": self.default,
        }

    @classmethod
    def from_json(cls, data: dict) -> LabelMap:
        return cls(
            tuple(data["classes"]),
            dict(data["lookup"]),
            bool(data["binary"]),
            data.get("unmapped", "error"),
            data.get("default"),
        )


def fit_binary_labels(task: TaskConfig, keys: list[str]) -> LabelMap:
    """normal/threat from positive_labels, negative_labels, or 0/1 and booleans."""
    lab = task.label
    pos = {category_key(v) for v in lab.positive_labels or []}
    neg = {category_key(v) for v in lab.negative_labels or []}
    if not pos and not neg:
        unknown = [k for k in keys if k.lower() not in _BOOL_KEYS]
        if unknown:
            raise DataError(
                f"task {task.name!r}: label column {lab.column!r} holds {unknown[:5]}; "
                "binary labels must be 0/1 or booleans, or set "
                "label.positive_labels / label.negative_labels"
            )
        lookup = {k: _BOOL_KEYS[k.lower()] for k in keys}
        unmapped = lab.unmapped
    elif pos and neg:
        lookup = {**{k: 0 for k in neg}, **{k: 1 for k in pos}}
        unmapped = lab.unmapped
    else:
        # One side listed: every other value is the other side (NSL-KDD: all but normal).
        lookup = {k: (1 if pos else 0) for k in (pos or neg)}
        lookup.update({k: (0 if pos else 1) for k in keys if k not in lookup})
        # A new attack name at evaluation time is still "not normal".
        return LabelMap(("normal", "threat"), lookup, True, "error", default=0 if pos else 1)
    return LabelMap(("normal", "threat"), lookup, True, unmapped)


def fit_multiclass_labels(task: TaskConfig, keys: list[str]) -> LabelMap:
    """Classes from label.classes, label.mapping, or the values seen."""
    lab = task.label
    if lab.mapping is not None:
        classes = list(lab.classes or dict.fromkeys(lab.mapping.values()))
        bad = sorted(set(lab.mapping.values()) - set(classes))
        if bad:
            raise DataError(f"task {task.name!r}: label.mapping targets {bad} are not in label.classes")
        lookup = {category_key(k): classes.index(v) for k, v in lab.mapping.items()}
    else:
        classes = list(lab.classes or keys)
        lookup = {category_key(c): i for i, c in enumerate(classes)}
    if len(classes) < 2:
        raise DataError(f"task {task.name!r}: a classification task needs at least two classes, found {classes}")
    return LabelMap(tuple(classes), lookup, False, lab.unmapped)


def balanced_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse class frequency per class (0 for a class with no rows): the `balanced`
    class_weighting of the network's loss and of tree tasks alike."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
