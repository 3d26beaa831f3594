"""Tests for trainer/encodings.py: each encoding's fit, graph module and width."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from jenga_edge.contract.schema import ENCODING_NAMES, Feature, FeatureSchema
from trainer.encodings import (
    ENCODINGS,
    Z_LIMIT,
    choose_auto,
    is_heavy_tailed,
    quantile_edges,
    signed_log1p,
)
from trainer.model import FeatureEncoder


def test_the_registry_implements_exactly_the_schemas_encodings():
    assert sorted(ENCODINGS) == sorted(ENCODING_NAMES)


def _feature(name: str, x: np.ndarray, bins: int = 4) -> Feature:
    return Feature("x", "numeric", impute=float(np.median(x)), **{"encoding": name, **ENCODINGS[name].fit(x, bins)})


def _reference(f: Feature, x: np.ndarray) -> np.ndarray:
    """What the encoding computes, written out in numpy: the graph must agree."""
    if f.encoding == "piecewise_linear":
        e = np.asarray(f.edges)
        return np.clip((x[:, None] - e[:-1]) / (e[1:] - e[:-1]), 0.0, 1.0)
    t = signed_log1p(x) if f.encoding == "log1p" else x
    return np.clip((t - f.mean) / f.std, -Z_LIMIT, Z_LIMIT)[:, None]


@pytest.mark.parametrize("name", ENCODING_NAMES)
def test_each_module_computes_what_its_fit_describes(name):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.lognormal(3.0, 2.0, 500), [-5.0, 0.0, 1e7]])
    f = _feature(name, x)
    enc = ENCODINGS[name]
    module = enc.module([0], [f])
    got = module(torch.tensor(x, dtype=torch.float32)[:, None]).numpy()
    assert got.shape == (len(x), enc.width(f))
    np.testing.assert_allclose(got, _reference(f, x), rtol=1e-4, atol=1e-4)


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
