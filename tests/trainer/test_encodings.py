"""Tests for trainer/encodings.py: each encoding's fit, graph module and width."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from jenga_edge.contract.schema import ENCODING_NAMES, Feature, FeatureSchema
from trainer.encodings import (
    ENCODINGS,
    PERIODIC_QUANTILE_BINS,
    Z_LIMIT,
    PeriodicOptions,
    choose_auto,
    column_span,
    is_heavy_tailed,
    quantile_edges,
    select_columns,
    signed_log1p,
)
from trainer.model import FeatureEncoder


def test_the_registry_implements_exactly_the_schemas_encodings():
    assert sorted(ENCODINGS) == sorted(ENCODING_NAMES)


def _feature(name: str, x: np.ndarray, bins: int = 4) -> Feature:
    return Feature("x", "numeric", impute=float(np.median(x)), **{"encoding": name, **ENCODINGS[name].fit(x, bins)})


def _reference(f: Feature, x: np.ndarray, module: torch.nn.Module) -> np.ndarray:
    """What the encoding computes, written out in numpy: the graph must agree."""
    e = np.asarray(f.edges)
    if f.encoding == "piecewise_linear":
        return np.clip((x[:, None] - e[:-1]) / (e[1:] - e[:-1]), 0.0, 1.0)
    if f.encoding == "periodic":  # its learned weights are the module's own
        rank = np.clip((x[:, None] - e[:-1]) / (e[1:] - e[:-1]), 0.0, 1.0).mean(axis=1)
        z = (rank - 0.5) * math.sqrt(12.0)
        freq = module.frequencies.detach().numpy()[0]
        v = 2 * math.pi * z[:, None] * freq
        p = np.concatenate([np.cos(v), np.sin(v)], axis=1)
        w, b = module.weight.detach().numpy()[0], module.bias.detach().numpy()[0]
        return np.maximum(p @ w + b, 0.0)
    t = signed_log1p(x) if f.encoding == "log1p" else x
    return np.clip((t - f.mean) / f.std, -Z_LIMIT, Z_LIMIT)[:, None]


@pytest.mark.parametrize("name", ENCODING_NAMES)
def test_each_module_computes_what_its_fit_describes(name):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.lognormal(3.0, 2.0, 500), [-5.0, 0.0, 1e7]])
    f = _feature(name, x)
    enc = ENCODINGS[name]
    module = enc.module([0], [f])
    got = module(torch.tensor(x, dtype=torch.float32)[:, None]).detach().numpy()
    assert got.shape == (len(x), enc.width(f))
    np.testing.assert_allclose(got, _reference(f, x, module), rtol=1e-4, atol=1e-4)


def test_standard_and_log1p_fit_their_own_statistics():
    x = np.array([0.0, 9.0, 99.0, 999.0])
    assert ENCODINGS["standard"].fit(x, 8) == {"mean": pytest.approx(x.mean()), "std": pytest.approx(x.std())}
    t = signed_log1p(x)
    assert ENCODINGS["log1p"].fit(x, 8) == {"mean": pytest.approx(t.mean()), "std": pytest.approx(t.std())}
    assert ENCODINGS["none"].fit(x, 8) == {"mean": 0.0, "std": 1.0}


def test_a_constant_column_gets_std_one_not_zero():
    assert ENCODINGS["standard"].fit(np.full(10, 3.0), 8)["std"] == 1.0


def test_piecewise_linear_on_a_constant_column_falls_back_to_standard():
    params = ENCODINGS["piecewise_linear"].fit(np.full(10, 3.0), 8)
    assert params["encoding"] == "standard" and params["std"] == 1.0


def test_periodic_fits_fine_quantile_edges_and_falls_back_on_a_constant_column():
    x = np.random.default_rng(1).lognormal(3.0, 2.0, 2000)
    assert len(ENCODINGS["periodic"].fit(x, 4)["edges"]) == PERIODIC_QUANTILE_BINS + 1
    params = ENCODINGS["periodic"].fit(np.full(10, 3.0), 8)
    assert params["encoding"] == "standard" and params["std"] == 1.0


def test_periodic_gives_each_feature_its_own_weights_and_width():
    rng = np.random.default_rng(2)
    x = np.stack([rng.normal(0, 1, 300), rng.lognormal(5, 3, 300)], axis=1)
    feats = [_feature("periodic", x[:, j]) for j in range(2)]
    opts = PeriodicOptions(frequencies=3, width=5, sigma=0.5)
    module = ENCODINGS["periodic"].module([0, 1], feats, opts)
    assert module.frequencies.shape == (2, 3) and module.weight.shape == (2, 6, 5)
    assert ENCODINGS["periodic"].width(feats[0], opts) == 5
    out = module(torch.tensor(x, dtype=torch.float32))
    assert out.shape == (300, 10) and bool((out >= 0).all())
    # Feature 1's block depends on feature 1 only: a heavy tail cannot reach feature 0's columns.
    y = x.copy()
    y[:, 1] = 1e30
    out2 = module(torch.tensor(y, dtype=torch.float32))
    assert torch.equal(out[:, :5], out2[:, :5]) and torch.isfinite(out2).all()
    z = module.rank(torch.tensor(x, dtype=torch.float32))
    assert float(z.min()) >= -math.sqrt(3) - 1e-5 and float(z.max()) <= math.sqrt(3) + 1e-5


def test_feature_encoder_puts_each_encoding_in_registry_order():
    rows = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    features = (
        Feature("a", "numeric", "piecewise_linear", edges=(0.0, 5.0, 10.0)),
        Feature("b", "numeric", "none"),
        Feature("c", "numeric", "standard", mean=6.0, std=3.0),
    )
    enc = FeatureEncoder(FeatureSchema(features), embedding_dim=0)
    out = enc(torch.tensor(rows, dtype=torch.float32), torch.zeros((3, 0), dtype=torch.long))
    assert enc.out_dim == out.shape[1] == 4
    np.testing.assert_allclose(out[:, 0].numpy(), [-1.0, 0.0, 1.0])  # standard (c)
    np.testing.assert_allclose(out[:, 1].numpy(), [2.0, 5.0, 8.0])  # none (b)
    np.testing.assert_allclose(out[:, 2:].numpy(), [[0.2, 0.0], [0.8, 0.0], [1.0, 0.4]])  # bins of a


def test_missing_values_take_the_imputed_value_before_encoding():
    f = Feature("a", "numeric", "standard", impute=10.0, mean=10.0, std=2.0)
    enc = FeatureEncoder(FeatureSchema((f,)), embedding_dim=0)
    out = enc(torch.tensor([[math.nan], [12.0]]), torch.zeros((2, 0), dtype=torch.long))
    np.testing.assert_allclose(out.numpy(), [[0.0], [1.0]])


def test_auto_picks_log1p_for_heavy_tails_only():
    heavy = np.array([1.0] * 190 + [1e6] * 10)
    normal = np.random.default_rng(0).normal(50.0, 5.0, 200)
    assert is_heavy_tailed(heavy) and choose_auto(heavy) == "log1p"
    assert not is_heavy_tailed(normal) and choose_auto(normal) == "standard"
    assert not is_heavy_tailed(np.array([-1.0, 0.0, 1e9]))  # negative values: no log


def test_signed_log1p_keeps_sign():
    np.testing.assert_allclose(signed_log1p(np.array([-9.0, 0.0, 9.0])), [-math.log(10), 0.0, math.log(10)])


def test_quantile_edges():
    assert quantile_edges(np.array([5.0, 5.0]), 4) is None
    assert quantile_edges(np.arange(9.0), 4) == (0.0, 2.0, 4.0, 6.0, 8.0)


@pytest.mark.parametrize("cols", [[0, 1, 2, 3, 4], [1, 2, 3], [4], [0, 2, 4], [3, 1], [2, 2, 0]])
def test_select_columns_is_x_at_those_columns_whichever_way_it_is_computed(cols):
    x = torch.tensor(
        [[1.0, math.inf, -2.5, 0.0, 7.0], [math.nan, -math.inf, 3.0, 1e30, -0.0], [5.0, 6.0, 7.0, 8.0, 9.0]]
    )
    span = column_span(cols)
    assert (span is not None) == (cols in ([0, 1, 2, 3, 4], [1, 2, 3], [4]))
    got = select_columns(x, torch.tensor(cols), span)
    torch.testing.assert_close(got, x[:, cols], equal_nan=True, rtol=0, atol=0)


def test_the_categorical_reconstruction_target_is_one_hot_per_feature():
    features = (
        Feature("n", "numeric", "standard", mean=0.0, std=1.0),
        Feature("p", "categorical", "none", categories=("<unk>", "tcp", "udp")),
        Feature("s", "categorical", "none", categories=("<unk>", "dns", "http", "ssh")),
    )
    enc = FeatureEncoder(FeatureSchema(features), embedding_dim=2)
    cat = torch.tensor([[1, 3], [0, 0], [2, 1]])
    target = enc.reconstruction_target(torch.tensor([[0.5], [1.0], [-1.0]]), cat)
    assert enc.target_dim == target.shape[1] == 1 + 3 + 4
    expected = torch.zeros(3, 7)
    for row, (a, b) in enumerate(cat.tolist()):
        expected[row, a] = expected[row, 3 + b] = 1.0
    torch.testing.assert_close(target[:, 1:], expected, rtol=0, atol=0)
