"""jenga-export keygen and sign: key files, signature.json, and what the agent checks."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess

import pytest
from click.testing import CliRunner

from export.cli import main as export_cli
from jenga_edge.bundle import verify_bundle
from jenga_edge.contract.bundle_format import MANIFEST, canonical_manifest, manifest_digest
from jenga_edge.contract.errors import BundleError
from jenga_edge.contract.signature import public_key_from_pem, signed_message
from jenga_edge.trust import TrustConfig, TrustStore


def cli(*args):
    return CliRunner().invoke(export_cli, [str(a) for a in args])


@pytest.fixture
def bundle(network_bundle, tmp_path):
    d = tmp_path / "bundle"
    shutil.copytree(network_bundle[0], d)
    return d


def test_the_exporter_writes_the_digest_of_the_canonical_manifest(network_bundle):
    out, manifest = network_bundle
    assert manifest.bundle_id == manifest_digest(manifest) and len(manifest.bundle_id) == 64
    canonical = json.loads(canonical_manifest(manifest))
    written = json.loads((out / MANIFEST).read_text())
    assert "bundle_id" not in canonical and canonical == {k: v for k, v in written.items() if k != "bundle_id"}


def test_keygen_then_sign_then_the_agent_accepts_it(bundle, tmp_path):
    res = cli("keygen", "-o", tmp_path / "release")
    assert res.exit_code == 0, res.output
    key, pub = tmp_path / "release.key", tmp_path / "release.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert cli("keygen", "-o", tmp_path / "release").exit_code == 2  # a key is never overwritten
    res = cli("sign", "--bundle", bundle, "--key", key)
    assert res.exit_code == 0, res.output
    sig = json.loads((bundle / "signature.json").read_text())
    assert sig["algorithm"] == "ed25519" and sig["bundle_id"] == verify_bundle(bundle).bundle_id
    trust = TrustStore.load(TrustConfig(keys=[str(pub)], require_signature=True))
    assert verify_bundle(bundle, trust).signer == sig["key_id"]


def test_sign_refuses_a_bundle_that_does_not_match_its_manifest(bundle, tmp_path):
    cli("keygen", "-o", tmp_path / "k")
    raw = bytearray((bundle / "threat.onnx").read_bytes())
    raw[-1] ^= 1
    (bundle / "threat.onnx").write_bytes(bytes(raw))
    res = cli("sign", "--bundle", bundle, "--key", tmp_path / "k.key")
    assert res.exit_code == 2 and "threat.onnx is missing or does not match its sha256; refusing to sign" in res.output
    assert not (bundle / "signature.json").exists()
    res = cli("sign", "--bundle", bundle, "--key", tmp_path / "k.pub")
    assert res.exit_code == 2 and "not an Ed25519 private key PEM" in res.output


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_keys_are_the_pem_files_openssl_reads_and_writes(bundle, tmp_path):
    """A key made by OpenSSL signs, and OpenSSL verifies what jenga-export signed."""
    key, pub = tmp_path / "o.key", tmp_path / "o.pub"
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=30)  # noqa: E731
    run("openssl", "genpkey", "-algorithm", "ed25519", "-out", key)
    run("openssl", "pkey", "-in", key, "-pubout", "-out", pub)
    assert cli("sign", "--bundle", bundle, "--key", key).exit_code == 0
    trust = TrustStore.load(TrustConfig(keys=[str(pub)], require_signature=True))
    b = verify_bundle(bundle, trust)
    sig = json.loads((bundle / "signature.json").read_text())
    (tmp_path / "msg").write_bytes(signed_message(b.bundle_id))
    (tmp_path / "sig").write_bytes(__import__("base64").b64decode(sig["signature"]))
    run("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", tmp_path / "msg",
        "-sigfile", tmp_path / "sig")  # fmt: skip
    assert public_key_from_pem(pub.read_bytes()) == trust.keys[sig["key_id"]]


def test_a_signature_file_that_is_not_one_is_refused(bundle, tmp_path):
    cli("keygen", "-o", tmp_path / "k")
    (bundle / "signature.json").write_text('{"format": "x"}')
    trust = TrustStore.load(TrustConfig(keys=[str(tmp_path / "k.pub")]))
    with pytest.raises(BundleError, match=r"signature.json: not a bundle signature"):
        verify_bundle(bundle, trust)
