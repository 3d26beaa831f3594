"""Tests for trainer/labels.py: raw label values to class indices."""

from __future__ import annotations

import pytest

from jenga_edge.contract.errors import DataError
from trainer.config import LabelConfig, TaskConfig
from trainer.labels import DROP, LabelMap
from trainer.task_kinds import fit_label_map


def binary(**label):
    return TaskConfig(name="t", type="anomaly_detection", source="s", label=LabelConfig(column="lab", **label))


def multi(**label):
    return TaskConfig(name="cat", type="classification", source="s", label=LabelConfig(column="lab", **label))


def fit_encode(task, raw):
    lm = fit_label_map(task, raw)
    return lm, lm.encode(raw, "lab").tolist()


# --- binary -----------------------------------------------------------------------------


def test_binary_negative_labels_only_everything_else_positive():
    raw = ["normal", "neptune", "smurf", "normal", "satan"]
    lm, y = fit_encode(binary(negative_labels=["normal"]), raw)
    assert y == [0, 1, 1, 0, 1]
    assert lm.binary and lm.classes == ("normal", "threat")


def test_binary_positive_labels_only_everything_else_negative():
    raw = ["benign", "malicious", "unknown", "malicious"]
    _, y = fit_encode(binary(positive_labels=["malicious"]), raw)
    assert y == [0, 1, 0, 1]


def test_binary_one_side_missing_value_is_error():
    with pytest.raises(DataError, match=r"label column 'lab', row 2: value None maps to no class"):
        fit_encode(binary(negative_labels=["normal"], unmapped="drop"), ["normal", "x", None])


def test_binary_one_side_new_value_after_fit_is_other_side():
    lm = fit_label_map(binary(negative_labels=["normal"]), ["normal", "neptune"])
    assert lm.encode(["normal", "mscan"], "lab").tolist() == [0, 1]


def test_binary_both_lists():
    _, y = fit_encode(
        binary(positive_labels=["bad", "worse"], negative_labels=["good"]), ["good", "bad", "worse", "good"]
    )
    assert y == [0, 1, 1, 0]


def test_binary_both_lists_unmapped_error():
    task = binary(positive_labels=["bad"], negative_labels=["good"])
    with pytest.raises(DataError) as exc:
        fit_encode(task, ["good", "bad", "weird"])
    msg = str(exc.value)
    assert "label column 'lab', row 2: value 'weird' maps to no class" in msg
    assert "known: bad, good" in msg
    assert "unmapped: drop" in msg


def test_binary_both_lists_unmapped_drop():
    task = binary(positive_labels=["bad"], negative_labels=["good"], unmapped="drop")
    _, y = fit_encode(task, ["good", "bad", "weird", None])
    assert y == [0, 1, DROP, DROP]


@pytest.mark.parametrize(
    "raw,expected",
    [
        ([0, 1, 1, 0], [0, 1, 1, 0]),
        ([0.0, 1.0], [0, 1]),
        (["0", "1"], [0, 1]),
        ([True, False], [1, 0]),
        (["true", "false", "True", "FALSE"], [1, 0, 1, 0]),
        ([1, "1", 1.0, True], [1, 1, 1, 1]),
    ],
)
def test_binary_raw_values(raw, expected):
    _, y = fit_encode(binary(), raw)
    assert y == expected


def test_binary_raw_non_binary_values_are_clear_error():
    with pytest.raises(DataError) as exc:
        fit_label_map(binary(), ["normal", "attack", "normal"])
    msg = str(exc.value)
    assert "task 't': label column 'lab' holds ['attack', 'normal']" in msg
    assert "binary labels must be 0/1 or booleans" in msg
    assert "label.positive_labels / label.negative_labels" in msg


def test_binary_raw_two_is_not_binary():
    with pytest.raises(DataError, match=r"holds \['2'\]"):
        fit_label_map(binary(), [0, 1, 2])


def test_binary_raw_missing_value():
    with pytest.raises(DataError, match="value None maps to no class"):
        fit_encode(binary(), [0, 1, None])
    _, y = fit_encode(binary(unmapped="drop"), [0, 1, None])
    assert y == [0, 1, DROP]


@pytest.mark.parametrize("listed", [[1], ["1"], [1.0]])
@pytest.mark.parametrize("raw", [1, "1", 1.0])
def test_number_forms_match(listed, raw):
    lm = fit_label_map(binary(positive_labels=listed), [0, raw])
    assert lm.encode([raw, 0, "0", 0.0], "lab").tolist() == [1, 0, 0, 0]


def test_boolean_listed_label_matches_string_true():
    lm = fit_label_map(binary(positive_labels=[True]), ["true", "false"])
    assert lm.encode(["true", True, "false"], "lab").tolist() == [1, 1, 0]


# --- multiclass -------------------------------------------------------------------------


def test_multiclass_classes_list_order():
    lm, y = fit_encode(multi(classes=["dos", "probe", "r2l"]), ["probe", "dos", "r2l", "dos"])
    assert lm.classes == ("dos", "probe", "r2l")
    assert y == [1, 0, 2, 0]
    assert not lm.binary


def test_multiclass_classes_unmapped_error_and_drop():
    with pytest.raises(DataError, match=r"row 1: value 'normal' maps to no class"):
        fit_encode(multi(classes=["dos", "probe"]), ["dos", "normal"])
    _, y = fit_encode(multi(classes=["dos", "probe"], unmapped="drop"), ["dos", "normal", "probe"])
    assert y == [0, DROP, 1]


def test_multiclass_classes_from_data_sorted():
    lm, y = fit_encode(multi(), ["c", "a", "b", "a"])
    assert lm.classes == ("a", "b", "c")
    assert y == [2, 0, 1, 0]


def test_multiclass_mapping_classes_in_first_seen_target_order():
    mapping = {"neptune": "DoS", "satan": "Probe", "smurf": "DoS", "guess_passwd": "R2L"}
    lm, y = fit_encode(multi(mapping=mapping, unmapped="drop"), ["normal", "smurf", "satan", "guess_passwd", "neptune"])
    assert lm.classes == ("DoS", "Probe", "R2L")
    assert y == [DROP, 0, 1, 2, 0]


def test_multiclass_mapping_with_classes_uses_classes_order():
    mapping = {"neptune": "DoS", "satan": "Probe"}
    lm, y = fit_encode(multi(classes=["Probe", "DoS", "U2R"], mapping=mapping), ["neptune", "satan"])
    assert lm.classes == ("Probe", "DoS", "U2R")
    assert y == [1, 0]


def test_multiclass_mapping_target_not_in_classes():
    task = multi(classes=["DoS", "Probe"], mapping={"neptune": "DoS", "x": "U2R", "y": "R2L"})
    with pytest.raises(DataError) as exc:
        fit_label_map(task, ["neptune"])
    assert "task 'cat': label.mapping targets ['R2L', 'U2R'] are not in label.classes" in str(exc.value)


def test_multiclass_mapping_unmapped_error():
    with pytest.raises(DataError, match="value 'normal' maps to no class"):
        fit_encode(multi(mapping={"a": "X", "b": "Y"}), ["a", "normal"])


@pytest.mark.parametrize(
    "task,raw",
    [
        (multi(), ["only", "only"]),
        (multi(mapping={"a": "X", "b": "X"}), ["a", "b"]),
    ],
)
def test_multiclass_fewer_than_two_classes(task, raw):
    with pytest.raises(DataError, match="task 'cat': a classification task needs at least two classes"):
        fit_label_map(task, raw)


def test_multiclass_number_forms_match():
    lm = fit_label_map(multi(classes=["1", "2"]), [1, 2])
    assert lm.encode([1, "1", 1.0, 2.0, " 2 "], "lab").tolist() == [0, 0, 0, 1, 1]


def test_multiclass_mapping_keys_compared_by_category_key():
    lm = fit_label_map(multi(mapping={"1": "low", "2": "high"}), [1, 2])
    assert lm.encode([1, 1.0, "1", 2, 2.0, "2"], "lab").tolist() == [0, 0, 0, 1, 1, 1]


# --- LabelMap ---------------------------------------------------------------------------


def test_label_map_json_round_trip():
    lm = fit_label_map(multi(classes=["a", "b"], unmapped="drop"), ["a", "b"])
    back = LabelMap.from_json(lm.to_json())
    assert back == lm
    assert back.encode(["b", "z"], "lab").tolist() == [1, DROP]


def test_encode_error_lists_at_most_twelve_known():
    lm = fit_label_map(multi(), [f"c{i:02d}" for i in range(20)])
    with pytest.raises(DataError) as exc:
        lm.encode(["zzz"], "lab")
    known = str(exc.value).split("known: ")[1].split(")")[0].split(", ")
    assert len(known) == 12


def test_encode_returns_int64():
    lm = fit_label_map(binary(), [0, 1])
    y = lm.encode([0, 1], "lab")
    assert y.dtype.name == "int64"
