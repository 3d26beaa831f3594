"""Tests for jenga_edge/schema.py: the feature schema contract and event vectorization."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from msgspec.structs import replace

from jenga_edge.contract.errors import EventError, JengaError, SchemaError
from jenga_edge.contract.schema import (
    OOV_INDEX,
    OOV_TOKEN,
    SCHEMA_VERSION,
    Feature,
    FeatureSchema,
    category_key,
    to_boolean,
    to_number,
)


def make_schema(allow_missing: bool = True) -> FeatureSchema:
    return FeatureSchema(
        (
            Feature("bytes", "numeric", "log1p", impute=10.0, mean=2.0, std=0.5, allow_missing=allow_missing),
            Feature("proto", "categorical", categories=(OOV_TOKEN, "tcp", "udp"), allow_missing=allow_missing),
            Feature(
                "dur", "numeric", "piecewise_linear", impute=1.0, edges=(0.0, 1.0, 5.0), allow_missing=allow_missing
            ),
            Feature("syn", "boolean", allow_missing=allow_missing),
            Feature("port", "categorical", categories=(OOV_TOKEN, "22", "443"), allow_missing=allow_missing),
        )
    )


# --- Feature ----------------------------------------------------------------------------


def test_feature_defaults():
    # (How wide each encoding makes a feature is the trainer's: tests/trainer/test_encodings.py.)
    f = Feature("x", "numeric")
    assert f.encoding == "none" and f.std == 1.0 and f.allow_missing
    assert f.is_numeric
    assert Feature("b", "boolean").is_numeric
    assert not Feature("c", "categorical", categories=(OOV_TOKEN, "a")).is_numeric


def test_an_unknown_encoding_is_refused():
    with pytest.raises(SchemaError, match=r"unknown encoding 'zscore' .known: standard, log1p, piecewise_linear, none"):
        Feature("x", "numeric", "zscore").check()


def test_feature_json_round_trip():
    for f in make_schema().features:
        data = f.to_json()
        assert isinstance(data["edges"], list) and isinstance(data["categories"], list)
        json.dumps(data)  # plain JSON types only
        assert Feature.from_json(data) == f


def test_feature_from_json_unknown_key():
    data = Feature("x", "numeric").to_json()
    data["colour"] = "red"
    with pytest.raises(SchemaError, match="feature 'x':"):
        Feature.from_json(data)


def test_feature_from_json_missing_kind():
    with pytest.raises(SchemaError, match="feature 'x':"):
        Feature.from_json({"name": "x"})


def test_feature_unknown_kind():
    with pytest.raises(
        SchemaError,
        match=r"feature 'x': kind: expected one of 'numeric', 'boolean', 'categorical', 'text', got str 'audio'",
    ):
        Feature.from_json({"name": "x", "kind": "audio"})


@pytest.mark.parametrize("cats", [(), ("a", "b"), ("a", OOV_TOKEN)])
def test_categories_must_start_with_unk(cats):
    with pytest.raises(SchemaError, match="feature 'c': categories must start with '<unk>'"):
        FeatureSchema((Feature("c", "categorical", categories=cats),))


@pytest.mark.parametrize(
    "kw", [dict(std=0.0), dict(std=-1.0), dict(mean=math.nan), dict(impute=math.inf), dict(std=math.nan)]
)
def test_numeric_params_must_be_finite(kw):
    with pytest.raises(SchemaError, match="impute/mean must be finite and std > 0"):
        Feature("x", "numeric", "standard", **kw).check()


@pytest.mark.parametrize("encoding", ["piecewise_linear", "periodic"])
@pytest.mark.parametrize("edges", [(), (1.0,), (0.0, 0.0, 1.0), (0.0, 2.0, 1.0)])
def test_piecewise_edges_strictly_increasing(edges, encoding):
    with pytest.raises(SchemaError, match=f"{encoding} needs >= 2 strictly increasing edges"):
        Feature("x", "numeric", encoding, edges=edges).check()


def test_a_periodic_feature_from_a_bundle_loads():
    data = {"name": "x", "kind": "numeric", "encoding": "periodic", "edges": [0.0, 1.0, 5.0]}
    assert Feature.from_json(data).edges == (0.0, 1.0, 5.0)


# --- FeatureSchema ----------------------------------------------------------------------


def test_schema_properties():
    s = make_schema()
    assert s.names == ["bytes", "proto", "dur", "syn", "port"]
    assert [f.name for f in s.numeric] == ["bytes", "dur", "syn"]
    assert [f.name for f in s.categorical] == ["proto", "port"]
    assert s.version == SCHEMA_VERSION


def test_schema_json_round_trip():
    s = make_schema()
    data = s.to_json()
    assert data["version"] == SCHEMA_VERSION
    text = json.dumps(data)
    back = FeatureSchema.from_json(json.loads(text))
    assert back == s
    assert back.sha256 == s.sha256
    assert back.to_json() == data


def test_sha256_stable_for_same_content():
    a, b = make_schema(), make_schema()
    assert a is not b
    assert a.sha256 == b.sha256
    assert len(a.sha256) == 64 and int(a.sha256, 16) >= 0
    # key order of the JSON does not matter
    shuffled = {"features": [dict(reversed(list(f.items()))) for f in a.to_json()["features"]], "version": 2}
    assert FeatureSchema.from_json(shuffled).sha256 == a.sha256


def test_canonical_json_is_sorted_and_compact():
    text = make_schema().canonical_json()
    assert " " not in text.replace("<unk>", "")
    assert text.startswith('{"events":null,"features":[')


@pytest.mark.parametrize(
    "change",
    [
        lambda fs: (replace(fs[0], mean=2.0000001), *fs[1:]),
        lambda fs: (replace(fs[0], std=0.6), *fs[1:]),
        lambda fs: (replace(fs[0], impute=11.0), *fs[1:]),
        lambda fs: (replace(fs[0], encoding="standard"), *fs[1:]),
        lambda fs: (replace(fs[0], allow_missing=False), *fs[1:]),
        lambda fs: (replace(fs[0], name="bytes2"), *fs[1:]),
        lambda fs: (fs[0], replace(fs[1], categories=(OOV_TOKEN, "tcp", "udp", "icmp")), *fs[2:]),
        lambda fs: (fs[0], replace(fs[1], categories=(OOV_TOKEN, "udp", "tcp")), *fs[2:]),
        lambda fs: (*fs[:2], replace(fs[2], edges=(0.0, 1.0, 6.0)), *fs[3:]),
        lambda fs: (fs[1], fs[0], *fs[2:]),  # order is the graph's input order
        lambda fs: fs[:-1],  # a feature dropped
    ],
)
def test_sha256_changes_with_any_change(change):
    s = make_schema()
    other = FeatureSchema(change(s.features))
    assert other.sha256 != s.sha256
    assert other != s


def test_empty_schema():
    with pytest.raises(SchemaError, match="at least one feature"):
        FeatureSchema(())


def test_duplicate_feature_names():
    with pytest.raises(SchemaError, match="duplicate feature names in schema: a, b"):
        FeatureSchema(
            (
                Feature("a", "numeric"),
                Feature("b", "numeric"),
                Feature("a", "boolean"),
                Feature("b", "numeric"),
                Feature("c", "numeric"),
            )
        )


def test_schema_checks_every_feature():
    with pytest.raises(SchemaError, match="feature 'c'"):
        FeatureSchema((Feature("n", "numeric"), Feature("c", "categorical", categories=("a",))))


def test_unsupported_version():
    data = make_schema().to_json()
    data["version"] = 4
    with pytest.raises(
        SchemaError,
        match="feature schema version 4 is not supported "
        r"\(this build reads versions 1, 2, 3\)",
    ):
        FeatureSchema.from_json(data)


def test_version_1_schemas_still_load_but_carry_no_event_model():
    data = make_schema().to_json()
    data["version"] = 1
    assert FeatureSchema.from_json(data).version == 1
    data["events"] = {"where": {"event_type": "flow"}}
    with pytest.raises(SchemaError, match="version 1 carries no event model"):
        FeatureSchema.from_json(data)


def test_version_defaults_to_current():
    data = make_schema().to_json()
    del data["version"]
    assert FeatureSchema.from_json(data).version == SCHEMA_VERSION


@pytest.mark.parametrize("bad", [[], {"version": 1}, "schema", None])
def test_from_json_needs_features(bad):
    with pytest.raises(SchemaError, match="must be an object with a 'features' list"):
        FeatureSchema.from_json(bad)


def test_from_json_bad_feature_is_schema_error():
    data = make_schema().to_json()
    data["features"][1]["categories"] = ["tcp"]
    with pytest.raises(SchemaError, match="feature 'proto': categories must start with '<unk>'"):
        FeatureSchema.from_json(data)


def test_schema_errors_are_jenga_errors():
    assert issubclass(SchemaError, JengaError) and issubclass(EventError, JengaError)


# --- vectorize --------------------------------------------------------------------------


def test_vectorize_shapes_and_dtypes():
    s = make_schema()
    rows = [
        {"bytes": 100, "proto": "tcp", "dur": 0.5, "syn": True, "port": 22},
        {"bytes": "7.5", "proto": "udp", "dur": 3, "syn": "no", "port": "443"},
    ]
    num, cat = s.vectorize(rows)
    assert num.dtype == np.float32 and num.shape == (2, 3)
    assert cat.dtype == np.int64 and cat.shape == (2, 2)
    np.testing.assert_array_equal(num, np.array([[100, 0.5, 1], [7.5, 3, 0]], dtype=np.float32))
    np.testing.assert_array_equal(cat, [[1, 1], [2, 2]])


def test_vectorize_does_not_scale():
    """Scaling happens in the graph: vectorize passes raw numbers through."""
    num, _ = make_schema().vectorize([{"bytes": 1e6, "proto": "tcp", "dur": 2, "syn": 0, "port": 22}])
    assert num[0, 0] == np.float32(1e6)


def test_vectorize_empty_rows():
    num, cat = make_schema().vectorize([])
    assert num.shape == (0, 3) and cat.shape == (0, 2)


def test_vectorize_ignores_extra_fields():
    num, cat = make_schema().vectorize(
        [{"bytes": 1, "proto": "tcp", "dur": 1, "syn": 1, "port": 22, "extra": {"nested": [1]}}]
    )
    assert num.tolist() == [[1, 1, 1]] and cat.tolist() == [[1, 1]]


# strict mode


def test_strict_missing_allowed_gives_nan_and_oov():
    num, cat = make_schema(allow_missing=True).vectorize([{}], strict=True)
    assert np.isnan(num).all()
    assert (cat == OOV_INDEX).all()


@pytest.mark.parametrize("field", ["bytes", "dur", "syn", "proto", "port"])
def test_strict_missing_not_allowed(field):
    row = {"bytes": 1, "proto": "tcp", "dur": 1, "syn": 1, "port": 22}
    del row[field]
    with pytest.raises(EventError) as exc:
        make_schema(allow_missing=False).vectorize([row], strict=True)
    assert exc.value.reason == "missing_field"
    assert exc.value.field == field
    assert str(exc.value) == f"field {field!r} is missing"


def test_strict_explicit_null_is_missing():
    row = {"bytes": None, "proto": "tcp", "dur": 1, "syn": 1, "port": 22}
    with pytest.raises(EventError) as exc:
        make_schema(allow_missing=False).vectorize([row], strict=True)
    assert exc.value.reason == "missing_field" and exc.value.field == "bytes"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "nan", "inf"])
def test_strict_non_finite(value):
    row = {"bytes": 1, "proto": "tcp", "dur": value, "syn": 1, "port": 22}
    with pytest.raises(EventError) as exc:
        make_schema().vectorize([row], strict=True)
    assert exc.value.reason == "non_finite"
    assert exc.value.field == "dur"
    assert "field 'dur' is" in str(exc.value) and "expected a finite number" in str(exc.value)


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], "twelve", "", object()])
def test_strict_wrong_type_numeric(value):
    row = {"bytes": value, "proto": "tcp", "dur": 1, "syn": 1, "port": 22}
    with pytest.raises(EventError) as exc:
        make_schema().vectorize([row], strict=True)
    assert exc.value.reason == "wrong_type"
    assert exc.value.field == "bytes"
    assert "expected a number" in str(exc.value)


@pytest.mark.parametrize("value", [{"a": 1}, ["tcp"]])
def test_strict_wrong_type_categorical(value):
    row = {"bytes": 1, "proto": value, "dur": 1, "syn": 1, "port": 22}
    with pytest.raises(EventError) as exc:
        make_schema().vectorize([row], strict=True)
    assert exc.value.reason == "wrong_type" and exc.value.field == "proto"
    assert f"is a {type(value).__name__}, expected a string or number" in str(exc.value)


@pytest.mark.parametrize(
    "value,expected",
    [
        (True, 1.0),
        (False, 0.0),
        (1, 1.0),
        (0, 0.0),
        (1.0, 1.0),
        ("yes", 1.0),
        ("no", 0.0),
        ("0", 0.0),
        ("1", 1.0),
        ("TRUE", 1.0),
        (" false ", 0.0),
        ("t", 1.0),
        ("f", 0.0),
        ("y", 1.0),
        ("n", 0.0),
    ],
)
def test_strict_boolean_coercion(value, expected):
    row = {"bytes": 1, "proto": "tcp", "dur": 1, "syn": value, "port": 22}
    num, _ = make_schema().vectorize([row], strict=True)
    assert num[0, 2] == expected


@pytest.mark.parametrize("value", [2, -1, 0.5, "maybe", "2", {"x": 1}])
def test_strict_boolean_wrong_values(value):
    row = {"bytes": 1, "proto": "tcp", "dur": 1, "syn": value, "port": 22}
    with pytest.raises(EventError) as exc:
        make_schema().vectorize([row], strict=True)
    assert exc.value.reason == "wrong_type" and exc.value.field == "syn"
    assert "expected a boolean (true/false, 0/1)" in str(exc.value)


def test_numeric_accepts_bools_and_numeric_strings():
    row = {"bytes": True, "proto": "tcp", "dur": " 2.5 ", "syn": 1, "port": 22}
    num, _ = make_schema().vectorize([row], strict=True)
    assert num[0, 0] == 1.0 and num[0, 1] == 2.5


# lenient mode


def test_lenient_non_finite_becomes_nan():
    rows = [{"bytes": math.nan, "proto": "tcp", "dur": math.inf, "syn": 1, "port": 22}]
    num, _ = make_schema().vectorize(rows, strict=False)
    assert math.isnan(num[0, 0]) and math.isnan(num[0, 1])


def test_lenient_missing_numeric_is_nan_even_if_not_allowed():
    num, _ = make_schema(allow_missing=False).vectorize([{"proto": "tcp", "port": 22}], strict=False)
    assert np.isnan(num).all()


def test_lenient_still_rejects_wrong_types():
    with pytest.raises(EventError) as exc:
        make_schema().vectorize([{"bytes": "lots"}], strict=False)
    assert exc.value.field == "bytes"


def test_lenient_missing_categorical_is_oov_even_if_not_allowed():
    _, cat = make_schema(allow_missing=False).vectorize([{"bytes": 1, "dur": 1, "syn": 1}], strict=False)
    assert (cat == OOV_INDEX).all()


def test_lenient_nan_boolean_is_nan():
    num, _ = make_schema().vectorize(
        [{"bytes": 1, "proto": "tcp", "dur": 1, "syn": math.nan, "port": 22}], strict=False
    )
    assert math.isnan(num[0, 2])


def test_strict_nan_boolean_is_non_finite():
    with pytest.raises(EventError) as exc:
        make_schema().vectorize([{"bytes": 1, "proto": "tcp", "dur": 1, "syn": math.nan, "port": 22}], strict=True)
    assert exc.value.reason == "non_finite"


@pytest.mark.parametrize("strict", [True, False])
def test_unseen_category_is_oov(strict):
    rows = [{"bytes": 1, "proto": "icmp", "dur": 1, "syn": 1, "port": 8080}]
    _, cat = make_schema().vectorize(rows, strict=strict)
    assert cat.tolist() == [[OOV_INDEX, OOV_INDEX]]


@pytest.mark.parametrize("value", [22, 22.0, "22", " 22 "])
def test_category_key_number_forms_match(value):
    rows = [{"bytes": 1, "proto": "tcp", "dur": 1, "syn": 1, "port": value}]
    _, cat = make_schema().vectorize(rows, strict=False)
    assert cat[0, 1] == 1


def test_category_is_case_sensitive():
    _, cat = make_schema().vectorize([{"proto": "TCP"}], strict=False)
    assert cat[0, 0] == OOV_INDEX


# --- helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,key",
    [
        (22, "22"),
        (22.0, "22"),
        ("22", "22"),
        (" 22 ", "22"),
        (22.5, "22.5"),
        (True, "true"),
        (False, "false"),
        ("tcp", "tcp"),
        (-3.0, "-3"),
        (0, "0"),
    ],
)
def test_category_key(value, key):
    assert category_key(value) == key


def test_category_key_bool_differs_from_int():
    assert category_key(True) != category_key(1)


def test_to_number():
    assert to_number(3, "x") == 3.0 and isinstance(to_number(3, "x"), float)
    assert to_number("1e3", "x") == 1000.0
    assert to_number(False, "x") == 0.0
    with pytest.raises(EventError) as exc:
        to_number(None, "fld")
    assert exc.value.field == "fld" and exc.value.reason == "wrong_type"
    assert str(exc.value) == "field 'fld' is NoneType None, expected a number"


def test_to_number_message_truncates_long_values():
    with pytest.raises(EventError) as exc:
        to_number("z" * 500, "x")
    assert len(str(exc.value)) < 120


def test_to_boolean_values():
    assert to_boolean("Yes", "b") == 1.0 and to_boolean("N", "b") == 0.0
    with pytest.raises(EventError, match="expected a boolean"):
        to_boolean("on", "b")
