import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from jenga_edge.bundle import MANIFEST, verify_bundle
from jenga_edge.cli import main as edge_cli
from jenga_edge.contract.bundle_format import BUNDLE_FORMAT_VERSION, decode_manifest, encode_manifest
from jenga_edge.contract.errors import BundleError
from jenga_edge.contract.schema import FeatureSchema


@pytest.fixture
def bundle_copy(network_bundle, tmp_path) -> Path:
    d = tmp_path / "bundle"
    shutil.copytree(network_bundle[0], d)
    return d


def edit_manifest(d: Path, change) -> None:
    m = json.loads((d / MANIFEST).read_text())
    change(m)
    (d / MANIFEST).write_text(json.dumps(m))


def test_a_good_bundle_verifies(bundle_copy):
    b = verify_bundle(bundle_copy)
    assert b.tasks["threat"].threshold == pytest.approx(b.manifest.tasks[0].threshold)
    assert b.tasks["threat"].schema.sha256 == b.manifest.tasks[0].schema_sha256
    assert [i.name for i in b.tasks["threat"].inputs] == ["numeric", "categorical"]


@pytest.mark.parametrize("name", ["threat.onnx", "merged-net.onnx"])
def test_one_changed_byte_is_caught(bundle_copy, name):
    raw = bytearray((bundle_copy / name).read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (bundle_copy / name).write_bytes(bytes(raw))
    with pytest.raises(BundleError, match=rf"{name} sha256 mismatch.*refusing to load"):
        verify_bundle(bundle_copy)


def test_missing_graph_is_refused(bundle_copy):
    (bundle_copy / "attack_type.onnx").unlink()
    with pytest.raises(BundleError, match=r"attack_type.onnx is listed in the manifest but missing"):
        verify_bundle(bundle_copy)


def test_a_swapped_schema_is_caught(bundle_copy):
    def change(m):
        m["tasks"][0]["schema"]["features"][0]["mean"] += 1.0

    edit_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match=r"manifest.json: tasks\[0\]\.schema_sha256: does not match the schema$"):
        verify_bundle(bundle_copy)


def test_file_names_cannot_escape_the_bundle(bundle_copy):
    def change(m):
        m["tasks"][0]["file"] = "../threat.onnx"

    edit_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match=r"refusing file name '../threat.onnx'"):
        verify_bundle(bundle_copy)


@pytest.mark.parametrize(
    "change,text",
    [
        (
            lambda m: m.update(format_version=BUNDLE_FORMAT_VERSION + 1),
            f"format_version {BUNDLE_FORMAT_VERSION + 1} is not supported",
        ),
        (
            lambda m: m.update(format_version=1),
            "format_version 1 is not supported .*written by jenga-export 0.1; re-export",
        ),
        (lambda m: m.update(format="other"), "expected 'jenga.bundle'"),
        (lambda m: m["requires"].update(agent_min_version="9.0.0"), "needs jenga-edge >= 9.0.0"),
        (lambda m: m["requires"].update(onnxruntime_min_version="99.0"), "needs onnxruntime >= 99.0"),
        (lambda m: m["tasks"][0].pop("sha256"), r"tasks\[0\]\.sha256: missing required key, expected a string"),
        (lambda m: m["tasks"][0].update(type="regression"), r"tasks\[0\]\.type: task type 'regression' is not known"),
        (
            lambda m: m["tasks"][1]["outputs"].pop(),
            r"tasks\[1\]\.outputs: \(role, dtype\) probabilities float32 are not those of task kind "
            r"classification \(probabilities float32, label int64\)",
        ),
        (
            lambda m: m["tasks"][0]["outputs"][0].update(role="label"),
            r"tasks\[0\]\.outputs: \(role, dtype\) label float32",
        ),
        (
            lambda m: m["tasks"][1]["outputs"][1].update(dtype="float32"),
            r"tasks\[1\]\.outputs: \(role, dtype\) probabilities float32, label float32 are not",
        ),
        (
            lambda m: m["tasks"][1]["outputs"].append(m["tasks"][1]["outputs"][1]),
            r"tasks\[1\]\.outputs: \(role, dtype\) probabilities float32, label int64, label int64",
        ),
        (lambda m: m["tasks"].append(m["tasks"][0]), r"tasks: a task name is listed twice"),
        (
            lambda m: m["merged"][0]["outputs"]["threat"][0].pop("role"),
            r"merged\[0\]\.outputs\.threat: \(role, dtype\) <no role> float32",
        ),
        (
            lambda m: m["merged"][0]["outputs"]["threat"][0].update(role="label"),
            r"merged\[0\]\.outputs\.threat: \(role, dtype\) label float32",
        ),
        (
            lambda m: m["merged"][0]["tasks"].append("ghost"),
            r"merged\[0\]: merged-net.onnx names tasks it does not describe",
        ),
        (lambda m: m.update(signature="x"), r"signature: unknown key"),
        (lambda m: m["tasks"][0]["schema"].update(_index={}), r"tasks\[0\]\.schema\._index: unknown key"),
        (
            lambda m: m["tasks"][0]["schema"]["features"][0].update(kind="text"),
            r"tasks\[0\]\.schema\.features\[0\]\.kind: expected one of 'numeric', 'boolean', 'categorical'",
        ),
        (
            lambda m: m["tasks"][0]["schema"].update(version=3),
            r"tasks\[0\]\.schema: feature schema version 3 is not",
        ),  # what an agent does not understand, it refuses
        (
            lambda m: m["merged"][0]["outputs"].pop("threat"),
            r"merged\[0\]: merged-net.onnx names tasks it does not describe",
        ),
    ],
)
def test_manifest_problems_are_refused(bundle_copy, change, text):
    edit_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match=text):
        verify_bundle(bundle_copy)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not a bundle"):
        verify_bundle(tmp_path)
    (tmp_path / MANIFEST).write_text("{oops")
    with pytest.raises(BundleError, match="not valid JSON"):
        verify_bundle(tmp_path)


def test_the_manifest_round_trips_through_its_structs(bundle_copy):
    data = (bundle_copy / MANIFEST).read_bytes()
    manifest = decode_manifest(data, "m")
    assert encode_manifest(manifest) == data  # what export wrote is what the agent reads
    assert manifest.format_version == BUNDLE_FORMAT_VERSION == 2
    assert [o.role for o in manifest.tasks[1].outputs] == ["probabilities", "label"]


def test_the_manifest_holds_each_schema_as_its_json_and_nothing_else(bundle_copy):
    m = json.loads((bundle_copy / MANIFEST).read_text())
    for t in m["tasks"]:
        assert t["schema"] == FeatureSchema.from_json(t["schema"]).to_json()
        assert set(t["schema"]) == {"version", "features", "events"}
        assert all(set(i) == {"name", "dtype", "shape", "features"} for i in t["inputs"])
        assert all(set(o) == {"name", "dtype", "shape", "role"} for o in t["outputs"])


def edge(*args):
    return CliRunner().invoke(edge_cli, list(args))


def test_inspect_prints_tasks_schema_and_hashes(bundle_copy):
    res = edge("inspect", "--bundle", str(bundle_copy))
    assert res.exit_code == 0, res.output
    assert "verified: all sha256 match" in res.output
    for text in ["threat", "attack_type", "merged-net.onnx", "packet_size", "protocol", "embedding", "<unk>"]:
        assert text in res.output
    js = json.loads(edge("inspect", "--bundle", str(bundle_copy), "--json").output)
    assert js["format"] == "jenga.bundle"
    assert js == json.loads((bundle_copy / MANIFEST).read_text())


def test_inspect_refuses_a_tampered_bundle(bundle_copy):
    raw = bytearray((bundle_copy / "threat.onnx").read_bytes())
    raw[-1] ^= 0xFF
    (bundle_copy / "threat.onnx").write_bytes(bytes(raw))
    res = edge("inspect", "--bundle", str(bundle_copy))
    assert res.exit_code == 2
    assert res.output.strip().startswith("error:") and "sha256 mismatch" in res.output
    assert len(res.output.strip().splitlines()) == 1
