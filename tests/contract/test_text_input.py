"""The text-feature contract: encode_text's rules, the schema's checks, the graph inputs."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from jenga_edge.contract.bundle_format import check_inputs, input_specs
from jenga_edge.contract.errors import EventError, SchemaError
from jenga_edge.contract.schema import Feature, FeatureSchema
from jenga_edge.contract.text_input import encode_text
from jenga_edge.contract.typed import Invalid


def text(max_bytes=8, normalize="dns", truncate="tail", name="domain", **kw):
    return Feature(name=name, kind="text", max_bytes=max_bytes, normalize=normalize, truncate=truncate, **kw)


@pytest.mark.parametrize(
    ("value", "feature", "want"),
    [
        (None, text(), b""),
        ("", text(), b""),
        ("Example.COM.", text(max_bytes=64), b"example.com"),
        ("a...", text(), b"a"),
        ("...", text(), b""),
        ("abcdefgh", text(), b"abcdefgh"),  # exactly max_bytes
        ("xyz.example.com", text(), b"mple.com"),  # tail keeps the TLD
        ("xyz.example.com", text(truncate="head"), b"xyz.exam"),
        ("ÄB.de", text(max_bytes=64), "Äb.de".encode()),  # only ASCII letters are lowered
        ("a€", text(max_bytes=3, truncate="head"), b"a\xe2\x82"),  # a cut may split a character
        ("Keep.Case.", text(normalize="none", max_bytes=64), b"Keep.Case."),
        ("a\x00b", text(), b"a\x00b"),  # NUL is a byte like any other (lengths, not terminators)
        ("\ud800x", text(), "\ufffdx".encode()),  # a lone surrogate becomes U+FFFD
    ],
)
def test_encode_text(value, feature, want):
    assert encode_text(value, feature) == want


@pytest.mark.parametrize(
    ("value", "kind"), [(5, "a number"), (1.5, "a number"), (True, "a boolean"), ({}, "an object"), ([], "an array")]
)
def test_encode_text_refuses_what_is_not_a_string(value, kind):
    with pytest.raises(EventError, match=f"field 'domain' is {kind}, expected a string") as err:
        encode_text(value, text())
    assert err.value.reason == "wrong_type"


@pytest.mark.parametrize(
    ("feature", "error"),
    [
        (Feature(name="d", kind="text"), "needs max_bytes from 1 to 1024, got none"),
        (text(max_bytes=0), "got 0"),
        (text(max_bytes=2000), "got 2000"),
        (text(encoding="standard"), "has no encoding"),
        (Feature(name="n", kind="numeric", max_bytes=4), "for text features only"),
    ],
)
def test_text_feature_checks(feature, error):
    with pytest.raises(SchemaError, match=error):
        feature.check()


def test_text_needs_schema_version_3():
    with pytest.raises(SchemaError, match="text features need feature schema version 3"):
        FeatureSchema((text(),))
    assert FeatureSchema((text(),), version=3).text_width == 8


def test_a_schema_without_text_encodes_as_before():
    """Text keys are never written for other features: old schemas keep their sha256."""
    feat = Feature(name="x", kind="numeric")
    assert set(feat.to_json()) == {
        "name",
        "kind",
        "encoding",
        "impute",
        "mean",
        "std",
        "edges",
        "categories",
        "allow_missing",
    }
    assert b"max_bytes" not in msgspec.json.encode(FeatureSchema((feat,)))


def test_schema_round_trips_text():
    schema = FeatureSchema(
        (text(), text(max_bytes=32, name="sni", normalize="none", truncate="head"), Feature(name="x", kind="numeric")),
        version=3,
    )
    again = FeatureSchema.from_json(schema.to_json())
    assert again == schema and again.sha256 == schema.sha256
    assert [f.name for f in again.text] == ["domain", "sni"] and again.text_width == 32


def test_vectorize_text():
    schema = FeatureSchema((text(), text(max_bytes=4, name="sni", normalize="none", truncate="head")), version=3)
    data, lengths = schema.vectorize_text([{"domain": "A.b.", "sni": "abcdef"}, {}])
    assert data.dtype == np.uint8 and data.shape == (2, 2, 8) and lengths.dtype == np.int64
    assert bytes(data[0, 0, :3]) == b"a.b" and lengths[0].tolist() == [3, 4] and bytes(data[0, 1, :4]) == b"abcd"
    assert not data[1].any() and lengths[1].tolist() == [0, 0]
    required = FeatureSchema((text(allow_missing=False),), version=3)
    with pytest.raises(EventError, match="field 'domain' is missing"):
        required.vectorize_text([{}], strict=True)
    with pytest.raises(EventError, match="expected a string") as err:
        schema.vectorize_text([{"domain": "ok"}, {"domain": 7}])
    assert err.value.row == 1


def test_input_specs_with_text():
    schema = FeatureSchema((text(), Feature(name="x", kind="numeric")), version=3)
    specs = {s.name: s for s in input_specs(schema)}
    assert list(specs) == ["numeric", "categorical", "text_bytes", "text_lengths"]
    assert (specs["text_bytes"].dtype, specs["text_bytes"].shape) == ("uint8", ["batch", 1, "bytes"])
    assert (specs["text_lengths"].dtype, specs["text_lengths"].shape) == ("int64", ["batch", 1])
    check_inputs(list(specs.values()), schema)
    with pytest.raises(Invalid, match="expected numeric, categorical, text_bytes, text_lengths"):
        check_inputs([specs["numeric"], specs["categorical"]], schema)
    no_text = FeatureSchema((Feature(name="x", kind="numeric"),))
    assert [s.name for s in input_specs(no_text)] == ["numeric", "categorical"]
