"""bench/dga_study.py's pure helpers: the byte rule of its names (the schema's text rule,
truncate: tail), batches trimmed to their longest name, the trainer's learning-rate
schedule and the dense family indices of a fold's training rows. (No training here.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(_BENCH))  # dga_study imports its siblings dga_compare, detection_compare
_spec = importlib.util.spec_from_file_location("dga_study", _BENCH / "dga_study.py")
assert _spec and _spec.loader
study = importlib.util.module_from_spec(_spec)
sys.modules["dga_study"] = study  # its dataclasses look their module up there
_spec.loader.exec_module(study)


def test_encode_names_pads_with_zeros_and_keeps_the_tail_of_a_long_name():
    x, lengths = study.encode_names(["ab.com", "", "xyz.münchen.de"], 8)
    assert x.dtype == np.uint8 and x.shape == (3, 8)
    assert lengths.tolist() == [6, 0, 8]
    assert bytes(x[0, :6]) == b"ab.com" and not x[0, 6:].any()
    assert not x[1].any()
    assert bytes(x[2]) == "xyz.münchen.de".encode()[-8:]  # the TLD's side, a byte cut


def test_trimmed_batches_cover_every_row_once_at_their_longest_length():
    lengths = np.array([3, 9, 1, 0, 0, 4, 2])
    plan = study.trimmed_batches(lengths, 3)
    assert plan == [(0, 3, 9), (3, 6, 4), (6, 7, 2)]
    assert study.trimmed_batches(np.array([0, 0]), 4) == [(0, 2, 1)]  # never a 0-byte axis


def test_lr_at_warms_up_linearly_then_decays_to_zero():
    total = 100
    assert study.lr_at(0, total, 1.0) == pytest.approx(1 / 5)
    assert study.lr_at(4, total, 1.0) == pytest.approx(1.0)
    assert study.lr_at(5, total, 1.0) == pytest.approx(1.0)
    assert study.lr_at(total, total, 1.0) == pytest.approx(0.0)
    mid = study.lr_at(5 + 95 // 2, total, 1.0)
    assert 0.45 < mid < 0.55


def test_remap_makes_family_indices_dense_and_keeps_benign():
    assert study.remap(np.array([-1, 7, 3, 7, -1, 12])).tolist() == [-1, 1, 0, 1, -1, 2]


def test_swap_tlds_draws_each_new_tld_from_the_benign_names_only():
    names = ["abc.com", "xyz.bazar", "a.b.org", "nodot", "q.ru"]
    y = np.array([0, 1, 0, 1, 0])
    out = study.swap_tlds(names, y, seed=3)
    assert [n.rpartition(".")[0] for n in out] == ["abc", "xyz", "a.b", "nodot", "q"]
    assert {n.rpartition(".")[2] for n in out} <= {"com", "org", "ru"}  # never a DGA row's TLD
    assert study.swap_tlds(names, y, seed=3) == out  # seeded


def test_an_ensemble_recipe_scores_the_mean_of_its_members_probabilities():
    torch = pytest.importorskip("torch")
    recipe = study.Recipe(options={"channels": 4, "widths": (3,), "embedding_dim": 4}, hidden=(8,), ensemble=3)
    net = study.build(recipe, 1).eval()
    x, lengths = study.encode_names(["ab.com", "xkqzv.ru"], 16)
    xb, lb = torch.from_numpy(x).unsqueeze(1), torch.from_numpy(lengths).unsqueeze(1)
    with torch.no_grad():
        members = torch.sigmoid(net.logits(net.features(xb, lb)))
        assert members.shape == (2, 3)
        assert torch.allclose(net(xb, lb), members.mean(dim=1))


def test_seen_splits_hold_out_a_fifth_of_every_family_and_of_the_benign_names():
    fam = np.array([-1] * 50 + [0] * 10 + [1] * 5 + [2])  # family 2 has one name
    splits = study.seen_splits(fam, 2, seed=3)
    assert len(splits) == 2
    for tr, te, _ in splits:
        assert np.intersect1d(tr, te).size == 0 and np.union1d(tr, te).size == len(fam)
        held = {f: int((fam[te] == f).sum()) for f in (-1, 0, 1, 2)}
        assert held == {-1: 10, 0: 2, 1: 1, 2: 0}  # a family of one stays in training
    assert not np.array_equal(splits[0][1], splits[1][1])  # each fold its own draw
    again = study.seen_splits(fam, 2, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again, strict=True))  # seeded


def test_family_recall_is_taken_at_the_threshold_that_flags_one_percent_of_benign_names():
    y = np.array([0] * 100 + [1] * 4)
    fam = np.array([-1] * 100 + [0, 0, 1, 1])
    scores = np.concatenate([np.linspace(0.0, 0.5, 100), [0.9, 0.1, 0.95, 0.99]])
    out = study.family_recall(y, fam, scores)
    assert out == {0: [2, 0.5], 1: [2, 1.0]}
