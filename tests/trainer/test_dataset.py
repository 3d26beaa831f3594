"""Tests for trainer/dataset.py: prepare() from config to arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jenga_edge.contract.errors import DataError
from trainer.config import config_from_dict
from trainer.dataset import DROP, Holdout, prepare

ATTACKS = ["neptune", "smurf", "satan", "ipsweep"]


def net_rows(n=60):
    rows = []
    for i in range(n):
        attack = "normal" if i % 2 == 0 else ATTACKS[(i // 2) % len(ATTACKS)]
        rows.append(
            {
                "bytes": float(i * 10 + 1),
                "proto": "tcp" if i % 3 else "udp",
                "flag": i % 5 == 0,
                "attack": attack,
                "cat": None if attack == "normal" else ("DoS" if attack in ("neptune", "smurf") else "Probe"),
            }
        )
    return rows


def host_rows(n=30):
    return [{"cpu": float(i % 7), "host": f"h{i % 3}", "label": int(i % 4 == 0)} for i in range(n)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def files(tmp_path):
    return {
        "net": write_jsonl(tmp_path / "net.jsonl", net_rows()),
        "host": write_jsonl(tmp_path / "host.jsonl", host_rows()),
    }


ATTACK_TASK = {
    "name": "attack",
    "type": "anomaly_detection",
    "source": "net",
    "label": {"column": "attack", "negative_labels": ["normal"]},
}
NOVELTY_TASK = {
    "name": "novelty",
    "type": "anomaly_detection",
    "source": "net",
    "mode": "novelty",
    "label": {"column": "attack", "negative_labels": ["normal"]},
}
CATEGORY_TASK = {
    "name": "category",
    "type": "classification",
    "source": "net",
    "label": {
        "column": "attack",
        "unmapped": "drop",
        "mapping": {"neptune": "DoS", "smurf": "DoS", "satan": "Probe", "ipsweep": "Probe"},
    },
}
HOST_TASK = {"name": "host", "type": "anomaly_detection", "source": "host", "label": {"column": "label"}}


def config(files, tasks, seed=7, val=0.25, **net_source):
    sources = {"net": {"path": str(files["net"]), **net_source}, "host": {"path": str(files["host"])}}
    return config_from_dict(
        {
            "project_name": "t",
            "sources": sources,
            "tasks": tasks,
            "training": {"seed": seed, "validation_fraction": val},
        }
    )


# --- split ------------------------------------------------------------------------------


def test_split_is_disjoint_complete_and_sized(files):
    sources, _ = prepare(config(files, [ATTACK_TASK]))
    s = sources["net"]
    assert len(np.intersect1d(s.train_idx, s.val_idx)) == 0
    assert sorted(np.concatenate([s.train_idx, s.val_idx]).tolist()) == list(range(60))
    assert len(s.val_idx) == 15
    assert list(s.train_idx) == sorted(s.train_idx) and list(s.val_idx) == sorted(s.val_idx)
    assert s.held_idx.size == 0


def test_split_deterministic_for_seed(files):
    a, _ = prepare(config(files, [ATTACK_TASK], seed=1))
    b, _ = prepare(config(files, [ATTACK_TASK], seed=1))
    c, _ = prepare(config(files, [ATTACK_TASK], seed=2))
    np.testing.assert_array_equal(a["net"].train_idx, b["net"].train_idx)
    np.testing.assert_array_equal(a["net"].val_idx, b["net"].val_idx)
    assert not np.array_equal(a["net"].val_idx, c["net"].val_idx)


def test_split_validation_at_least_one_row(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"x": float(i), "label": i % 2} for i in range(10)])
    cfg = config_from_dict(
        {
            "project_name": "t",
            "sources": {"s": {"path": str(path)}},
            "training": {"validation_fraction": 0.01},
            "tasks": [{"name": "a", "type": "anomaly_detection", "source": "s", "label": {"column": "label"}}],
        }
    )
    sources, _ = prepare(cfg)
    assert len(sources["s"].val_idx) == 1 and len(sources["s"].train_idx) == 9


def test_too_few_rows(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"x": 1.0, "label": 0}])
    cfg = config_from_dict(
        {
            "project_name": "t",
            "sources": {"s": {"path": str(path)}},
            "tasks": [{"name": "a", "type": "anomaly_detection", "source": "s", "label": {"column": "label"}}],
        }
    )
    with pytest.raises(DataError, match="only 1 rows: too few to hold out a validation split"):
        prepare(cfg)


# --- arrays and labels ------------------------------------------------------------------


def test_arrays_match_schema(files):
    sources, tasks = prepare(config(files, [ATTACK_TASK]))
    s = sources["net"]
    assert s.schema.names == ["bytes", "proto", "flag", "cat"]
    assert s.num.shape == (60, len(s.schema.numeric)) and s.num.dtype == np.float32
    assert s.cat.shape == (60, len(s.schema.categorical)) and s.cat.dtype == np.int64
    assert s.ids == list(range(60))
    (t,) = tasks
    assert t.binary and t.source == "net"
    expected = [0 if r["attack"] == "normal" else 1 for r in net_rows()]
    assert t.y.tolist() == expected
    np.testing.assert_array_equal(t.train_idx, s.train_idx)
    np.testing.assert_array_equal(t.val_idx, s.val_idx)
    assert t.groups.tolist() == [r["attack"] for r in net_rows()]


def test_novelty_trains_only_on_normal_rows(files):
    sources, tasks = prepare(config(files, [ATTACK_TASK, NOVELTY_TASK]))
    attack, novelty = tasks
    assert novelty.name == "novelty"
    assert novelty.train_idx.size > 0
    assert (novelty.y[novelty.train_idx] == 0).all()
    np.testing.assert_array_equal(novelty.train_idx, attack.train_idx[attack.y[attack.train_idx] == 0])
    # validation keeps both classes so the threshold can be chosen
    assert set(novelty.y[novelty.val_idx].tolist()) == {0, 1}
    np.testing.assert_array_equal(novelty.val_idx, sources["net"].val_idx)


def test_dropped_rows_leave_task_indices(files):
    sources, tasks = prepare(config(files, [CATEGORY_TASK]))
    (t,) = tasks
    assert not t.binary and t.labels.classes == ("DoS", "Probe")
    normal = np.array([r["attack"] == "normal" for r in net_rows()])
    assert (t.y[normal] == DROP).all()
    assert not normal[t.train_idx].any() and not normal[t.val_idx].any()
    s = sources["net"]
    assert set(t.train_idx) == set(s.train_idx[~normal[s.train_idx]])


def test_tasks_sharing_a_source_share_the_schema(files):
    sources, tasks = prepare(config(files, [ATTACK_TASK, NOVELTY_TASK, CATEGORY_TASK]))
    assert list(sources) == ["net"]  # host has no task: skipped
    assert {t.source for t in tasks} == {"net"}
    assert [t.name for t in tasks] == ["attack", "novelty", "category"]
    assert "attack" not in sources["net"].schema.names


def test_two_sources_two_schemas(files):
    sources, tasks = prepare(config(files, [HOST_TASK, ATTACK_TASK]))
    assert set(sources) == {"net", "host"}
    assert sources["host"].schema.names == ["cpu", "host"]
    assert sources["net"].schema.names == ["bytes", "proto", "flag", "cat"]
    assert sources["host"].schema.sha256 != sources["net"].schema.sha256
    assert [t.name for t in tasks] == ["host", "attack"]  # config order, not source order
    assert sources["host"].num.shape[0] == 30 and sources["net"].num.shape[0] == 60


def test_group_column_is_reserved_and_used_for_groups(files):
    task = dict(ATTACK_TASK, group_column="cat")
    sources, (t,) = prepare(config(files, [task]))
    assert "cat" not in sources["net"].schema.names
    assert t.groups.tolist()[:4] == ["None", "DoS", "None", "DoS"]


def test_explicit_features_and_ignore(files):
    sources, _ = prepare(config(files, [ATTACK_TASK], features=["proto", "bytes"]))
    assert sources["net"].schema.names == ["proto", "bytes"]
    sources, _ = prepare(config(files, [ATTACK_TASK], ignore=["cat", "flag"]))
    assert sources["net"].schema.names == ["bytes", "proto"]


def test_id_column(files):
    sources, _ = prepare(config(files, [ATTACK_TASK], id_column="bytes"))
    assert sources["net"].ids[:3] == [1.0, 11.0, 21.0]
    assert "bytes" not in sources["net"].schema.names


def test_label_column_missing(files):
    task = dict(ATTACK_TASK, label={"column": "atack", "negative_labels": ["normal"]})
    with pytest.raises(DataError) as exc:
        prepare(config(files, [task]))
    msg = str(exc.value)
    assert "task 'attack': column 'atack' is not in source 'net'" in msg
    assert "columns: bytes, proto, flag, attack, cat" in msg


def test_group_column_missing(files):
    with pytest.raises(DataError, match="column 'grp' is not in source 'net'"):
        prepare(config(files, [dict(ATTACK_TASK, group_column="grp")]))


def test_given_schemas_replace_fitting(files):
    sources, _ = prepare(config(files, [ATTACK_TASK]))
    schema = sources["net"].schema
    again, _ = prepare(config(files, [ATTACK_TASK], seed=99, features=["bytes"]), schemas={"net": schema})
    assert again["net"].schema is schema
    np.testing.assert_array_equal(again["net"].num, sources["net"].num)


def test_no_labelled_rows_left(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"x": float(i), "k": "a" if i else "b"} for i in range(8)])
    cfg = config_from_dict(
        {
            "project_name": "t",
            "sources": {"s": {"path": str(path)}},
            "tasks": [
                {
                    "name": "c",
                    "type": "classification",
                    "source": "s",
                    "label": {"column": "k", "classes": ["b", "z"], "unmapped": "drop"},
                }
            ],
        }
    )
    with pytest.raises(DataError, match="task 'c': no labelled rows left for training or validation"):
        prepare(cfg)


def test_missing_categorical_with_strict_edge_policy(tmp_path):
    rows = [{"x": float(i), "c": None if i == 3 else "ab"[i % 2], "label": i % 2} for i in range(20)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    cfg = config_from_dict(
        {
            "project_name": "t",
            "sources": {"s": {"path": str(path), "missing": {"allow_missing_at_edge": False}}},
            "tasks": [{"name": "a", "type": "anomaly_detection", "source": "s", "label": {"column": "label"}}],
        }
    )
    sources, _ = prepare(cfg)
    assert sources["s"].cat[3, 0] == 0


# --- holdout ----------------------------------------------------------------------------


def test_holdout_removes_groups_from_train_and_val(files):
    base, _ = prepare(config(files, [ATTACK_TASK, NOVELTY_TASK]))
    held_values = frozenset({"smurf", "satan"})
    sources, tasks = prepare(config(files, [ATTACK_TASK, NOVELTY_TASK]), holdout=Holdout("net", "attack", held_values))
    s = sources["net"]
    attacks = np.array([r["attack"] for r in net_rows()])
    held = np.isin(attacks, list(held_values))
    np.testing.assert_array_equal(s.held_idx, np.flatnonzero(held))
    assert not held[s.train_idx].any() and not held[s.val_idx].any()
    # everything else is where the unheld split put it
    np.testing.assert_array_equal(s.train_idx, base["net"].train_idx[~held[base["net"].train_idx]])
    # the unheld validation rows are split between validation and a test slice
    np.testing.assert_array_equal(
        np.sort(np.concatenate([s.val_idx, s.test_idx])), base["net"].val_idx[~held[base["net"].val_idx]]
    )
    assert not set(s.val_idx) & set(s.test_idx) and s.test_idx.size > 0
    assert not held[s.test_idx].any()
    assert sorted(np.concatenate([s.train_idx, s.val_idx, s.test_idx, s.held_idx]).tolist()) == list(range(60))
    for t in tasks:
        assert not held[t.train_idx].any() and not held[t.val_idx].any()
    # held rows keep their labels and groups for scoring afterwards
    assert (tasks[0].y[s.held_idx] == 1).all()
    assert set(tasks[0].groups[s.held_idx]) == held_values


def test_holdout_schema_fitted_without_held_rows(tmp_path):
    rows = [{"p": "x" if i % 2 else "y", "attack": "normal" if i % 2 else "dos"} for i in range(40)]
    rows += [{"p": "zz", "attack": "novel"} for _ in range(10)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    cfg = config_from_dict(
        {
            "project_name": "t",
            "sources": {"s": {"path": str(path)}},
            "tasks": [
                {
                    "name": "a",
                    "type": "anomaly_detection",
                    "source": "s",
                    "label": {"column": "attack", "negative_labels": ["normal"]},
                }
            ],
        }
    )
    plain, _ = prepare(cfg)
    assert "zz" in plain["s"].schema.categorical[0].categories
    sources, _ = prepare(cfg, holdout=Holdout("s", "attack", frozenset({"novel"})))
    assert "zz" not in sources["s"].schema.categorical[0].categories
    assert sources["s"].held_idx.tolist() == list(range(40, 50))


def test_holdout_other_source_untouched(files):
    sources, _ = prepare(
        config(files, [HOST_TASK, ATTACK_TASK]), holdout=Holdout("net", "attack", frozenset({"smurf"}))
    )
    assert sources["host"].held_idx.size == 0
    assert sources["net"].held_idx.size > 0


def test_holdout_values_compared_by_category_key(tmp_path):
    rows = [{"x": float(i), "grp": i % 3, "label": int(i % 3 != 0)} for i in range(30)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    cfg = config_from_dict(
        {
            "project_name": "t",
            "sources": {"s": {"path": str(path)}},
            "tasks": [
                {
                    "name": "a",
                    "type": "anomaly_detection",
                    "source": "s",
                    "label": {"column": "label"},
                    "group_column": "grp",
                }
            ],
        }
    )
    sources, _ = prepare(cfg, holdout=Holdout("s", "grp", frozenset({"2"})))
    assert sources["s"].held_idx.tolist() == [i for i in range(30) if i % 3 == 2]


def _two_file_config(tmp_path, second_rows):
    a = write_jsonl(tmp_path / "a.jsonl", [{"x": float(i), "label": i % 2} for i in range(10)])
    b = write_jsonl(tmp_path / "b.jsonl", second_rows)
    return config_from_dict(
        {
            "project_name": "t",
            "sources": {"s": {"path": [str(a), str(b)], "kinds": {"x": "numeric"}}},
            "tasks": [{"name": "a", "type": "anomaly_detection", "source": "s", "label": {"column": "label"}}],
        }
    )


def test_a_bad_value_in_a_later_file_names_that_file_and_its_row(tmp_path):
    rows = [{"x": 1.0, "label": 0}, {"x": 2.0, "label": 1}, {"x": "oops", "label": 0}]
    with pytest.raises(DataError, match=r"b\.jsonl: row 2: .*oops") as exc:
        prepare(_two_file_config(tmp_path, rows))
    assert "a.jsonl" not in str(exc.value)


def test_a_later_file_without_the_label_column_is_named(tmp_path):
    with pytest.raises(DataError, match=r"column 'label' is not in source 's' \(.*b\.jsonl: row 0, columns: x\)"):
        prepare(_two_file_config(tmp_path, [{"x": 1.0}, {"x": 2.0}]))
