"""The agent's trust store: which Ed25519 keys may sign the bundles it loads.

`agent.trust.keys` lists public keys (PEM files, or inline `ed25519:<base64>`),
several at once so that a key can be rotated: bundles signed by the old and
by the new key are both accepted until the old one is removed. With
`require_signature`, a bundle without a valid signature by one of them is
refused; without it, an unsigned bundle loads, but a signature that is there
must still verify. The crypto library (PyNaCl) is imported only here, and
only when a signature is checked: an agent that trusts no key never loads it
(about 1.3 MB of resident memory and 9 ms, docs/bundle-format.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

from .contract.errors import BundleError, ConfigError
from .contract.signature import (
    SIGNATURE,
    Signature,
    inline_public_key,
    key_id,
    public_key_from_pem,
    signature_bytes,
    signed_message,
)
from .contract.typed import Config, Invalid, doc

KEY_FILE_MAX = 64 * 1024


class TrustConfig(Config, kw_only=True):
    """Bundle signatures: the keys this agent trusts, and whether a signature is required."""

    keys: Annotated[
        list[str],
        doc(
            "trusted Ed25519 public keys: PEM files (relative: to this file) or inline 'ed25519:<base64>'; "
            "list the old and the new key while rotating"
        ),
    ] = []
    require_signature: Annotated[bool, doc("refuse a bundle that is not signed by one of `keys`")] = False

    def __post_init__(self) -> None:
        if self.require_signature and not self.keys:
            raise Invalid("require_signature", "needs at least one key in `keys`")
        for i, k in enumerate(self.keys):
            if k.startswith("ed25519:") and inline_public_key(k) is None:
                raise Invalid(f"keys[{i}]", "an inline key is 'ed25519:' and the base64 of 32 bytes")


@dataclass(frozen=True)
class TrustStore:
    """Public keys by key id, and whether a bundle must be signed."""

    keys: dict[str, bytes]
    require_signature: bool = False
    names: tuple[str, str] = ("agent.trust.keys", "agent.trust.require_signature")  # for messages

    @classmethod
    def load(cls, cfg: TrustConfig, names: tuple[str, str] | None = None) -> TrustStore:
        """Read every key; an unreadable or malformed one is a ConfigError naming its key path."""
        names = names or cls.names
        keys: dict[str, bytes] = {}
        for i, entry in enumerate(cfg.keys):
            where = f"{names[0]}[{i}]"
            raw = inline_public_key(entry) if entry.startswith("ed25519:") else _read_key_file(entry, where)
            if raw is None:
                raise ConfigError(f"{where}: an inline key is 'ed25519:' and the base64 of 32 bytes")
            keys[key_id(raw)] = raw
        return cls(keys, cfg.require_signature, names)


def _read_key_file(path: str, where: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            text = fh.read(KEY_FILE_MAX + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: {path}: cannot read the key: {exc.strerror}") from None
    raw = public_key_from_pem(text) if len(text) <= KEY_FILE_MAX else None
    if raw is None:
        raise ConfigError(
            f"{where}: {path}: not an Ed25519 public key PEM (-----BEGIN PUBLIC KEY-----, "
            "as `jenga-export keygen` or `openssl pkey -pubout` write it)"
        )
    return raw


def check_signature(store: TrustStore | None, bundle_id: str, sig: Signature | None, where: str) -> str | None:
    """The id of the trusted key that signed `bundle_id`, None for an unsigned bundle the
    store lets through; a BundleError with the reason otherwise."""
    if store is None or not store.keys:
        return None  # nothing to check against: a signature, if any, is not read
    if sig is None:
        if store.require_signature:
            raise BundleError(
                f"{where}: the bundle is not signed (no {SIGNATURE}) and {store.names[1]} is set; "
                "sign it with `jenga-export sign`"
            )
        return None
    if sig.bundle_id != bundle_id:
        raise BundleError(
            f"{where}/{SIGNATURE}: signs bundle {sig.bundle_id[:16]}…, the manifest is bundle {bundle_id[:16]}…: "
            "the manifest changed after signing; refusing it"
        )
    public = store.keys.get(sig.key_id)
    if public is None:
        raise BundleError(
            f"{where}/{SIGNATURE}: signed by key {sig.key_id}, which {store.names[0]} does not list "
            f"(trusted: {', '.join(sorted(store.keys))}); refusing it"
        )
    if not _verify(public, signed_message(bundle_id), signature_bytes(sig)):
        raise BundleError(f"{where}/{SIGNATURE}: the signature by key {sig.key_id} does not verify; refusing it")
    return sig.key_id


def _verify(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey
    except ModuleNotFoundError:
        raise BundleError(
            "checking bundle signatures needs PyNaCl, which is not installed: pip install 'jenga-ai-edge[signing]'"
        ) from None
    try:
        VerifyKey(public).verify(message, signature)
    except BadSignatureError:
        return False
    return True


def resolve_keys(cfg: TrustConfig, base: str) -> None:
    """Key files named relative to the config file resolve against its directory."""
    cfg.keys = [k if k.startswith("ed25519:") or os.path.isabs(k) else os.path.join(base, k) for k in cfg.keys]


def store_from_options(keys: tuple[str, ...] | list[str], require_signature: bool) -> TrustStore | None:
    """The trust store of a command's --trust-key / --require-signature (None: none given)."""
    if require_signature and not keys:
        raise ConfigError("--require-signature: give the trusted keys with --trust-key")
    if not keys:
        return None
    bad = [k for k in keys if k.startswith("ed25519:") and inline_public_key(k) is None]
    if bad:
        raise ConfigError(f"--trust-key {bad[0]}: an inline key is 'ed25519:' and the base64 of 32 bytes")
    cfg = TrustConfig(keys=list(keys), require_signature=require_signature)
    return TrustStore.load(cfg, ("--trust-key", "--require-signature"))
