"""bench/dga_compare.py on tiny data: the unseen-family protocol never lets a model see the
family it is judged on, and the TLD view drops only the last label. (The baseline needs
scikit-learn, the `bench` extra: its run is skipped without it.)"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

_BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(_BENCH))  # dga_compare imports its sibling detection_compare
_spec = importlib.util.spec_from_file_location("dga_compare", _BENCH / "dga_compare.py")
assert _spec and _spec.loader
dga = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dga)

FAMILIES = [None] * 40 + ["a"] * 5 + ["b"] * 5 + ["c"] * 3 + ["d"] * 2 + ["e"]


def test_without_tld_drops_only_the_last_label():
    assert dga.without_tld("xjw8f2kq.com") == "xjw8f2kq"
    assert dga.without_tld("a.b.example.co.uk.") == "a.b.example.co"
    assert dga.without_tld("localhost") == "localhost"


def test_family_folds_partition_the_dga_families_and_are_seeded():
    folds = dga.family_folds(FAMILIES, 2, seed=3)
    assert sorted(f for fold in folds for f in fold) == ["a", "b", "c", "d", "e"]
    assert dga.family_folds(FAMILIES, 2, seed=3) == folds
    assert len(dga.family_folds(FAMILIES, 9, seed=3)) == 5  # never an empty fold


def test_unseen_splits_hold_each_fold_family_and_a_benign_share_out_of_training():
    fam = np.asarray([f or "" for f in FAMILIES], dtype=object)
    splits = dga.unseen_splits(FAMILIES, 2, seed=1)
    assert len(splits) == 2
    held_benign = None
    for train, test, held in splits:
        assert not set(train) & set(test) and len(train) + len(test) == len(FAMILIES)
        assert set(fam[test]) - {""} == set(held)  # only the fold's families are tested
        assert not set(fam[train]) & set(held)  # and none of them is trained on
        benign_test = {i for i in test if fam[i] == ""}
        assert len(benign_test) == 8  # 20 % of the 40 benign names
        held_benign = held_benign or benign_test
        assert benign_test == held_benign  # the same benign test names in every fold


def write_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))

    def rows(n_benign: int, n_per_family: int) -> list[dict]:
        out = [
            {"domain": f"{w}.com", "label": "benign", "family": None}
            for w in rng.choice(["shop", "news", "mail", "bank", "cloud", "photo"], n_benign)
        ]
        for fam in ("f1", "f2", "f3", "f4", "f5"):
            out += [
                {"domain": "".join(rng.choice(letters, 12)) + ".net", "label": "dga", "family": fam}
                for _ in range(n_per_family)
            ]
        return out

    for name, data in (("train.jsonl", rows(300, 40)), ("test_seen.jsonl", rows(100, 10))):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in data))


def test_a_quick_baseline_run_writes_the_table(tmp_path, capsys):
    pytest.importorskip("sklearn")
    write_data(tmp_path)
    out = tmp_path / "out.json"
    assert dga.main(["--data", str(tmp_path), "--folds", "3", "--out", str(out), "--no-ours"]) == 0
    text = capsys.readouterr().out
    assert "unseen families (3 folds)" in text and dga.BASELINE in text
    result = json.loads(out.read_text())
    assert {(s["protocol"], s["tld"]) for s in result["summary"]} == {
        ("seen families (test_seen)", True),
        ("seen families (test_seen)", False),
        ("unseen families", True),
        ("unseen families", False),
    }
    # random names against a handful of words: the baseline separates them on every view
    assert all(s["roc_auc"] > 0.9 for s in result["summary"])


def test_unseen_only_scores_the_family_folds_without_opening_test_seen(tmp_path):
    pytest.importorskip("sklearn")
    write_data(tmp_path)
    (tmp_path / "test_seen.jsonl").unlink()  # a tuning run must not need it
    out = tmp_path / "out.json"
    argv = ["--data", str(tmp_path), "--folds", "2", "--out", str(out), "--no-ours", "--unseen-only"]
    assert dga.main(argv) == 0
    result = json.loads(out.read_text())
    assert {(s["protocol"], s["tld"]) for s in result["summary"]} == {
        ("unseen families", True),
        ("unseen families", False),
    }
    assert result["test_seen_rows"] == 0


@pytest.mark.slow
def test_ours_is_trained_exported_and_scored_by_the_agent(tmp_path, capsys):
    """Our row: the trainer on the fold's rows, jenga-export, the agent's Scorer. (The table's
    metrics are detection_compare's, from scikit-learn, the `bench` extra.)"""
    pytest.importorskip("sklearn")
    write_data(tmp_path)
    out = tmp_path / "out.json"
    argv = ["--data", str(tmp_path), "--folds", "2", "--out", str(out), "--no-baseline", "--tmp", str(tmp_path / "w")]
    argv += ["--ours-set", "training.epochs=2", "--ours-set", "model.hidden_sizes=[16]", "--torch-threads", "1"]
    assert dga.main(argv) == 0
    result = json.loads(out.read_text())
    got = {(s["protocol"], s["model"], s["tld"]): s for s in result["summary"]}
    # ours: test_seen with and without the TLD, unseen families on the full names only
    assert set(got) == {
        ("seen families (test_seen)", "ours", True),
        ("seen families (test_seen)", "ours", False),
        ("unseen families", "ours", True),
    }
    assert got[("seen families (test_seen)", "ours", True)]["roc_auc"] > 0.9
    seen = next(r for r in result["rows"] if r["model"] == "ours" and r["tld"])
    assert seen["graph_bytes"] > 0 and seen["scorer_names_per_s"] > 0
    assert "ours recall@1%FPR" in capsys.readouterr().out


def test_a_missing_dataset_is_one_line_and_status_2(tmp_path, capsys):
    pytest.importorskip("sklearn")
    assert dga.main(["--data", str(tmp_path / "nowhere")]) == 2
    assert "train.jsonl: not found" in capsys.readouterr().err
