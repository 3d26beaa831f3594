"""Numeric encodings: each class holds its fit, its graph module and its documentation.

The refinery fits a numeric feature's encoding on the training split
(`fit`); the model computes it inside the graph (`module`), so an exported
graph takes raw values and the edge never scales anything itself. The fitted
parameters travel in the feature schema (`Feature.mean`, `.std`, `.edges`);
jenga_edge/contract/schema.py validates them on both sides.

Adding an encoding: a class here and a line in ENCODINGS, and its name in the
schema's ENCODING_NAMES (a bundle must say which encodings it uses; the agent
checks the name). tests/trainer/test_encodings.py holds the two lists equal.

`periodic` has learned parameters (Gorishniy et al. 2022, PLR): its fit is the
quantile edges (as piecewise_linear's), its module turns each value into its
quantile rank, then cos/sin of learned frequencies, then a per-feature linear
layer and ReLU. Its sizes come from the model config (`model.periodic`,
`PeriodicOptions` here), not from the schema: the graph carries the weights.

`auto` is not an encoding but a choice made per column: log1p for a
non-negative heavy-tailed column, standard otherwise (measured in
bench/encoding_compare.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from jenga_edge.contract.schema import Feature

Z_LIMIT = 100.0  # standardized values are clipped so one absurd event cannot overflow the trunk
# A non-negative column whose 99th percentile is this many times its median
# (plus one) is heavy-tailed, like byte and packet counts: log1p tames it.
HEAVY_TAIL_RATIO = 20.0


# Quantile edges fitted for a periodic column: its quantile rank needs a finer grid than
# piecewise_linear's bins (each edge is one float in the schema; ties merge them).
PERIODIC_QUANTILE_BINS = 64


@dataclass(frozen=True)
class PeriodicOptions:
    """Sizes of the `periodic` encoding (the model config's `model.periodic`)."""

    frequencies: int = 16  # k: learned frequencies per feature (2k cos/sin values)
    width: int = 16  # d: columns per feature after the linear layer
    sigma: float = 1.0  # frequencies start as N(0, sigma^2)


class Encoding:
    """One numeric encoding. `fit` returns the Feature fields it sets."""

    name: ClassVar[str]
    # Learned weights: its module has `fixed_view(x)`, one fixed column per feature, that
    # novelty autoencoders reconstruct instead (a learned target could shrink to nothing).
    learned: ClassVar[bool] = False

    def fit(self, x: np.ndarray, bins: int) -> dict[str, Any]:
        raise NotImplementedError

    def width(self, feature: Feature, options: PeriodicOptions | None = None) -> int:
        """Columns of the encoded vector one feature takes."""
        return 1

    def module(self, cols: list[int], features: list[Feature], options: PeriodicOptions | None = None) -> nn.Module:
        """(imputed raw numeric [batch, n]) -> this encoding's columns [batch, sum of widths]."""
        raise NotImplementedError


def column_span(cols: list[int]) -> tuple[int, int] | None:
    """(first, end) when `cols` are consecutive columns, else None."""
    return (cols[0], cols[0] + len(cols)) if cols and cols == list(range(cols[0], cols[0] + len(cols))) else None


def select_columns(x: torch.Tensor, index: torch.Tensor, span: tuple[int, int] | None) -> torch.Tensor:
    """x[:, index] as a graph computes it cheaply. Consecutive columns (`span`) are a
    slice, or x itself. Otherwise the rows of x transposed are gathered: onnxruntime's
    Gather copies one element per index along axis 1 (61 us for 33 of 38 columns at
    batch 256, about what the first layer's Gemm takes) but a whole row per index
    along axis 0 (7 us with the two Transposes). The values are the same either way."""
    if span is not None:
        return x if span == (0, x.shape[1]) else x[:, span[0] : span[1]]
    return x.t().index_select(0, index).t()


class _Scaled(nn.Module):
    """transform(x[:, cols]) standardized with fitted mean and std, clipped to +-Z_LIMIT."""

    # Buffers (register_buffer): declared so the checker sees tensors, not Tensor | Module.
    cols: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, cols: list[int], features: list[Feature], transform: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.register_buffer("cols", torch.tensor(cols, dtype=torch.long))
        self.span = column_span(cols)
        self.register_buffer("mean", torch.tensor([f.mean for f in features], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([f.std for f in features], dtype=torch.float32))
        self.transform = transform

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.transform(select_columns(x, self.cols, self.span))
        return ((v - self.mean) / self.std).clamp(-Z_LIMIT, Z_LIMIT)


class Standard(Encoding):
    """`standard`: the z-score (x - mean) / std, with mean and std of the training split."""

    name = "standard"

    def fit(self, x: np.ndarray, bins: int) -> dict[str, Any]:
        return _mean_std(self._numpy(x))

    @staticmethod
    def _numpy(x: np.ndarray) -> np.ndarray:
        return x

    @staticmethod
    def _torch(x: torch.Tensor) -> torch.Tensor:
        return x

    def module(self, cols: list[int], features: list[Feature], options: PeriodicOptions | None = None) -> nn.Module:
        return _Scaled(cols, features, self._torch)


class Log1p(Standard):
    """`log1p`: sign(x) * log1p(|x|), then the z-score: for heavy-tailed counts such
    as byte and packet totals (the sign keeps a stray negative value finite)."""

    name = "log1p"

    @staticmethod
    def _numpy(x: np.ndarray) -> np.ndarray:
        return signed_log1p(x)

    @staticmethod
    def _torch(x: torch.Tensor) -> torch.Tensor:
        return torch.sign(x) * torch.log1p(torch.abs(x))


class Raw(Standard):
    """`none`: the raw value (still clipped to +-Z_LIMIT), for features already on a
    small scale."""

    name = "none"

    def fit(self, x: np.ndarray, bins: int) -> dict[str, Any]:
        return {"mean": 0.0, "std": 1.0}


class _PiecewiseLinear(nn.Module):
    cols: torch.Tensor  # buffers, as in _Scaled
    left: torch.Tensor
    width: torch.Tensor

    def __init__(self, cols: list[int], features: list[Feature]):
        super().__init__()
        col: list[int] = []
        left: list[float] = []
        width: list[float] = []
        for j, f in zip(cols, features):
            for a, b in zip(f.edges, f.edges[1:]):
                col.append(j)
                left.append(a)
                width.append(b - a)
        self.register_buffer("cols", torch.tensor(col, dtype=torch.long))
        self.span = column_span(col)
        self.register_buffer("left", torch.tensor(left, dtype=torch.float32))
        self.register_buffer("width", torch.tensor(width, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = select_columns(x, self.cols, self.span)
        return ((v - self.left) / self.width).clamp(0.0, 1.0)


class PiecewiseLinear(Encoding):
    """`piecewise_linear`: quantile bins of the training split; a value is encoded by how
    far it fills each bin, one column per bin (Gorishniy et al., 2022). A (nearly)
    constant column has no bins to fill and falls back to `standard`."""

    name = "piecewise_linear"

    def fit(self, x: np.ndarray, bins: int) -> dict[str, Any]:
        return _edges_or_standard(x, bins, bins)

    def width(self, feature: Feature, options: PeriodicOptions | None = None) -> int:
        return len(feature.edges) - 1

    def module(self, cols: list[int], features: list[Feature], options: PeriodicOptions | None = None) -> nn.Module:
        return _PiecewiseLinear(cols, features)


class _Periodic(nn.Module):
    """Quantile rank -> [cos, sin](2 pi f z) -> per-feature linear -> ReLU (PLR).

    The rank (the mean fill of a feature's quantile bins, as piecewise_linear
    computes them) is centred and scaled to unit variance: the paper feeds
    quantile-transformed values, and a rank is immune to heavy tails and absurd
    values. Each feature has its own frequencies and linear layer, applied as
    one batched MatMul over features ([n, batch, 2k] @ [n, 2k, d])."""

    bins: _PiecewiseLinear
    average: torch.Tensor  # buffer

    def __init__(self, cols: list[int], features: list[Feature], options: PeriodicOptions):
        super().__init__()
        n, k, d = len(cols), options.frequencies, options.width
        self.bins = _PiecewiseLinear(cols, features)
        # Mean fill of each feature's bins: a [n_bins, n] averaging matrix (a MatMul in the graph).
        counts = [len(f.edges) - 1 for f in features]
        avg = torch.zeros(sum(counts), n)
        start = 0
        for j, c in enumerate(counts):
            avg[start : start + c, j] = 1.0 / c
            start += c
        self.register_buffer("average", avg)
        self.frequencies = nn.Parameter(torch.randn(n, k) * options.sigma)
        bound = 1.0 / math.sqrt(2 * k)  # nn.Linear's initialisation, per feature
        self.weight = nn.Parameter(torch.empty(n, 2 * k, d).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, d).uniform_(-bound, bound))

    def rank(self, x: torch.Tensor) -> torch.Tensor:
        """Quantile rank in [0, 1] per feature, centred to unit variance: [batch, n]."""
        return (self.bins(x) @ self.average - 0.5) * math.sqrt(12.0)

    def fixed_view(self, x: torch.Tensor) -> torch.Tensor:
        """What a novelty head reconstructs: the rank, which no weight can move."""
        return self.rank(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.rank(x)
        v = 2 * math.pi * z.unsqueeze(2) * self.frequencies  # [batch, n, k]
        p = torch.cat([torch.cos(v), torch.sin(v)], dim=2).transpose(0, 1)  # [n, batch, 2k]
        out = torch.relu(p @ self.weight + self.bias)  # [n, batch, d]
        return out.transpose(0, 1).reshape(x.shape[0], -1)


class Periodic(Encoding):
    """`periodic`: learned periodic features of the value's quantile rank, then a
    per-feature linear layer and ReLU, `model.periodic.width` columns per feature
    (PLR, Gorishniy et al., 2022). A (nearly) constant column falls back to `standard`."""

    name = "periodic"
    learned = True

    def fit(self, x: np.ndarray, bins: int) -> dict[str, Any]:
        return _edges_or_standard(x, PERIODIC_QUANTILE_BINS, bins)

    def width(self, feature: Feature, options: PeriodicOptions | None = None) -> int:
        return (options or PeriodicOptions()).width

    def module(self, cols: list[int], features: list[Feature], options: PeriodicOptions | None = None) -> nn.Module:
        return _Periodic(cols, features, options or PeriodicOptions())


# Registry order is the order of the encoded vector's parts.
ENCODINGS: dict[str, Encoding] = {e.name: e for e in (Standard(), Log1p(), Raw(), PiecewiseLinear(), Periodic())}


def choose_auto(x: np.ndarray) -> str:
    """`auto`: log1p for a non-negative heavy-tailed column, standard otherwise."""
    return Log1p.name if is_heavy_tailed(x) else Standard.name


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """log1p that keeps the sign, so a stray negative value does not become NaN."""
    return np.sign(x) * np.log1p(np.abs(x))


def is_heavy_tailed(x: np.ndarray) -> bool:
    if x.min() < 0:
        return False
    q50, q99 = np.quantile(x, [0.5, 0.99])
    return bool(q99 > HEAVY_TAIL_RATIO * (q50 + 1.0))


def _edges_or_standard(x: np.ndarray, n_edges_bins: int, bins: int) -> dict[str, Any]:
    """Quantile edges of `n_edges_bins` bins, or, for a (nearly) constant column with no
    bins to fill, the `standard` encoding's fit instead."""
    edges = quantile_edges(x, n_edges_bins)
    if edges is None:
        return {"encoding": Standard.name, **Standard().fit(x, bins)}
    return {"edges": edges}


def quantile_edges(x: np.ndarray, bins: int) -> tuple[float, ...] | None:
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, bins + 1)))
    return tuple(float(e) for e in edges) if edges.size >= 2 else None


def _mean_std(t: np.ndarray) -> dict[str, Any]:
    std = float(t.std())
    return {"mean": float(t.mean()), "std": std if std > 1e-12 else 1.0}
