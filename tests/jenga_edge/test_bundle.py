import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jenga_edge.bundle import MANIFEST, verify_bundle
from jenga_edge.contract.errors import BundleError

REPO = Path(__file__).resolve().parents[2]


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
    with pytest.raises(BundleError, match="attack_type.onnx is listed in the manifest but missing"):
        verify_bundle(bundle_copy)


def test_a_swapped_schema_is_caught(bundle_copy):
    def change(m):
        m["tasks"][0]["schema"]["features"][0]["mean"] += 1.0
    edit_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match="feature schema does not match its sha256"):
        verify_bundle(bundle_copy)


def test_file_names_cannot_escape_the_bundle(bundle_copy):
    def change(m):
        m["tasks"][0]["file"] = "../threat.onnx"
    edit_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match="refusing file name '../threat.onnx'"):
        verify_bundle(bundle_copy)


@pytest.mark.parametrize("change,text", [
    (lambda m: m.update(format_version=2), "format_version 2 is not supported"),
    (lambda m: m.update(format="other"), "expected 'jenga.bundle'"),
    (lambda m: m["requires"].update(agent_min_version="9.0.0"), "needs jenga-edge >= 9.0.0"),
    (lambda m: m["requires"].update(onnxruntime_min_version="99.0"), "needs onnxruntime >= 99.0"),
    (lambda m: m["tasks"][0].pop("sha256"), "malformed manifest"),
])
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


def edge(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jenga_edge.cli", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_inspect_prints_tasks_schema_and_hashes(bundle_copy):
    proc = edge("inspect", str(bundle_copy))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "verified: all sha256 match" in out
    for text in ["threat", "attack_type", "merged-net.onnx", "packet_size", "protocol", "embedding", "<unk>"]:
        assert text in out
    js = json.loads(edge("inspect", str(bundle_copy), "--json").stdout)
    assert js["format"] == "jenga.bundle"


def test_inspect_refuses_a_tampered_bundle(bundle_copy):
    raw = bytearray((bundle_copy / "threat.onnx").read_bytes())
    raw[-1] ^= 0xFF
    (bundle_copy / "threat.onnx").write_bytes(bytes(raw))
    proc = edge("inspect", str(bundle_copy))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "sha256 mismatch" in proc.stderr
