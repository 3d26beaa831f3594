"""Bundle signatures: what is signed, the signature file, and the key files.

A signed bundle holds `signature.json` beside its manifest:

    {"format": "jenga.bundle-signature", "algorithm": "ed25519",
     "key_id": "<16 hex>", "bundle_id": "<64 hex>", "signature": "<base64, 64 bytes>"}

The signature is Ed25519 over `signed_message(bundle_id)`: the ASCII bytes
`jenga.bundle/3 bundle_id <64 hex>`. bundle_id is the sha256 of the canonical
manifest (bundle_format.canonical_manifest), which holds every graph's sha256,
so one signature covers the manifest and every graph. The prefix keeps a
bundle signature from being mistaken for anything else the same key signs.

Keys are the standard PEM files OpenSSL reads and writes (`openssl genpkey
-algorithm ed25519`): a PKCS#8 private key and an SPKI public key. Their DER
for Ed25519 is a fixed prefix and the 32 raw key bytes, so they are read here
without a crypto library; signing and verifying need one (PyNaCl, the
`signing` extra), imported only where a signature is made or checked.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal

import msgspec

from .digest import sha256
from .errors import BundleError

SIGNATURE = "signature.json"
SIGNATURE_FORMAT = "jenga.bundle-signature"
MESSAGE_PREFIX = b"jenga.bundle/3 bundle_id "

# DER of an Ed25519 key, up to the 32 key bytes (RFC 8410).
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
_PEM = re.compile(rb"-----BEGIN ([A-Z ]+)-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END \1-----")
INLINE_PREFIX = "ed25519:"


class Signature(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    format: Literal["jenga.bundle-signature"]
    algorithm: Literal["ed25519"]
    key_id: str
    bundle_id: str
    signature: str  # base64 of the 64-byte Ed25519 signature


def signed_message(bundle_id: str) -> bytes:
    return MESSAGE_PREFIX + bundle_id.encode("ascii")


def key_id(public: bytes) -> str:
    """A key's short name in signature.json and logs: 16 hex digits of the sha256 of its 32 bytes."""
    return sha256(public).hexdigest()[:16]


def encode_signature(sig: Signature) -> bytes:
    return msgspec.json.format(msgspec.json.encode(sig), indent=2) + b"\n"


def decode_signature(data: bytes, where: str) -> Signature:
    try:
        sig = msgspec.json.decode(data, type=Signature)
        raw = base64.b64decode(sig.signature, validate=True)
    except (msgspec.DecodeError, msgspec.ValidationError, binascii.Error, UnicodeDecodeError) as exc:
        raise BundleError(f"{where}: not a bundle signature ({exc})") from None
    if len(raw) != 64:
        raise BundleError(f"{where}: signature: {len(raw)} bytes, an Ed25519 signature has 64")
    return sig


def signature_bytes(sig: Signature) -> bytes:
    return base64.b64decode(sig.signature)


def _pem_body(text: bytes, label: str) -> bytes | None:
    m = _PEM.search(text)
    if m is None or m.group(1).decode() != label:
        return None
    try:
        return base64.b64decode(b"".join(m.group(2).split()), validate=True)
    except binascii.Error:
        return None


def public_key_from_pem(text: bytes) -> bytes | None:
    """The 32 bytes of an Ed25519 public key PEM (`-----BEGIN PUBLIC KEY-----`), or None."""
    der = _pem_body(text, "PUBLIC KEY")
    if der is None or len(der) != 44 or not der.startswith(_SPKI_PREFIX):
        return None
    return der[len(_SPKI_PREFIX) :]


def private_key_from_pem(text: bytes) -> bytes | None:
    """The 32-byte seed of an Ed25519 PKCS#8 private key PEM (`-----BEGIN PRIVATE KEY-----`), or None."""
    der = _pem_body(text, "PRIVATE KEY")
    if der is None or len(der) != 48 or not der.startswith(_PKCS8_PREFIX):
        return None
    return der[len(_PKCS8_PREFIX) :]


def _pem(label: str, der: bytes) -> bytes:
    b64 = base64.b64encode(der)
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return b"\n".join([f"-----BEGIN {label}-----".encode(), *lines, f"-----END {label}-----".encode()]) + b"\n"


def public_key_pem(public: bytes) -> bytes:
    return _pem("PUBLIC KEY", _SPKI_PREFIX + public)


def private_key_pem(seed: bytes) -> bytes:
    return _pem("PRIVATE KEY", _PKCS8_PREFIX + seed)


def inline_public_key(text: str) -> bytes | None:
    """`ed25519:<base64 of the 32 key bytes>` (a key written into a config), or None."""
    if not text.startswith(INLINE_PREFIX):
        return None
    try:
        raw = base64.b64decode(text[len(INLINE_PREFIX) :], validate=True)
    except binascii.Error:
        return None
    return raw if len(raw) == 32 else None


__all__ = [
    "INLINE_PREFIX",
    "SIGNATURE",
    "SIGNATURE_FORMAT",
    "Signature",
    "decode_signature",
    "encode_signature",
    "inline_public_key",
    "key_id",
    "private_key_from_pem",
    "private_key_pem",
    "public_key_from_pem",
    "public_key_pem",
    "signature_bytes",
    "signed_message",
]
