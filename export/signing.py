"""Sign a bundle (workstation side): key pairs, and signature.json beside the manifest.

What is signed and the file formats are in jenga_edge/contract/signature.py;
the agent checks signatures against its trust store (jenga_edge/trust.py).
PyNaCl (the `signing` extra) does the Ed25519 arithmetic.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from jenga_edge.contract.bundle_format import MANIFEST, Manifest, decode_manifest
from jenga_edge.contract.digest import sha256_file
from jenga_edge.contract.errors import BundleError, ConfigError
from jenga_edge.contract.signature import (
    SIGNATURE,
    Signature,
    encode_signature,
    key_id,
    private_key_from_pem,
    private_key_pem,
    public_key_pem,
    signed_message,
)


def keygen(prefix: str | Path) -> tuple[Path, Path, str]:
    """A new key pair: PREFIX.key (private, mode 0600, never overwritten) and PREFIX.pub;
    returns both paths and the key id."""
    from nacl.signing import SigningKey

    key = SigningKey.generate()
    private, public = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    for p in (private, public):
        if p.exists():
            raise ConfigError(f"--output {prefix}: {p} exists; choose another name (a key is never overwritten)")
    try:
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(f"--output {prefix}: cannot write {private}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_key_pem(bytes(key)))
    public_raw = bytes(key.verify_key)
    public.write_bytes(public_key_pem(public_raw))
    return private, public, key_id(public_raw)


def read_private_key(path: str | Path) -> bytes:
    """The 32-byte seed of an Ed25519 PKCS#8 PEM (what keygen and `openssl genpkey -algorithm ed25519` write)."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"--key {path}: cannot read: {exc.strerror}") from None
    seed = private_key_from_pem(text)
    if seed is None:
        raise ConfigError(f"--key {path}: not an Ed25519 private key PEM (-----BEGIN PRIVATE KEY-----)")
    return seed


def sign_bundle(bundle_dir: str | Path, key_path: str | Path) -> Signature:
    """Check the bundle (its bundle_id, every graph's sha256), then write its signature.json."""
    from nacl.signing import SigningKey

    d = Path(bundle_dir)
    key = SigningKey(read_private_key(key_path))
    manifest = _checked_manifest(d)
    signature = key.sign(signed_message(manifest.bundle_id)).signature
    sig = Signature(
        format="jenga.bundle-signature",
        algorithm="ed25519",
        key_id=key_id(bytes(key.verify_key)),
        bundle_id=manifest.bundle_id,
        signature=base64.b64encode(signature).decode("ascii"),
    )
    tmp = d / f".{SIGNATURE}.tmp-{os.getpid()}"
    tmp.write_bytes(encode_signature(sig))
    os.replace(tmp, d / SIGNATURE)
    return sig


def _checked_manifest(d: Path) -> Manifest:
    """A signature vouches for every graph: sign only a bundle whose files match its manifest."""
    try:
        data = (d / MANIFEST).read_bytes()
    except OSError as exc:
        raise BundleError(f"--bundle {d}: not a bundle ({MANIFEST}: {exc.strerror})") from None
    manifest = decode_manifest(data, str(d / MANIFEST))
    listed = [(t.file, t.sha256) for t in manifest.tasks] + [(m.file, m.sha256) for m in manifest.merged]
    for name, digest in listed:
        p = d / name
        if os.path.basename(name) != name or p.is_symlink() or not p.is_file() or sha256_file(p) != digest:
            raise BundleError(f"--bundle {d}: {name} is missing or does not match its sha256; refusing to sign")
    return manifest
