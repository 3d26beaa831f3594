"""Derived fields over columns: one function for the agent's decoder and the trainer.

Inputs are float64 columns with NaN where a value is missing (timestamps already
in epoch seconds); a derived value is missing (NaN) when an input is, when a
ratio's denominator is 0, or when the result is not finite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .events import Derived, Duration, Ratio, Sum

F32_MAX = float(np.finfo(np.float32).max)

if TYPE_CHECKING:
    import numpy.typing as npt


def compute(spec: Derived, column: Callable[[str], npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
    """`spec`'s values; `column(name)` gives an input's float64 column."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if isinstance(spec, Duration):
            out = column(spec.end) - column(spec.start)
        elif isinstance(spec, Ratio):
            den = _total(spec.den, column)
            out = _total(spec.num, column) / np.where(den == 0.0, np.nan, den)
        elif isinstance(spec, Sum):
            out = _total(spec.of, column)
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"unknown derived kind {type(spec).__name__}")
    out[~np.isfinite(out) | (np.abs(out) > F32_MAX)] = np.nan  # the graph takes float32: beyond it is missing
    return out


def _total(names: list[str], column: Callable[[str], npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
    total: npt.NDArray[np.float64] = column(names[0]).copy()
    for name in names[1:]:
        total += column(name)
    return total
