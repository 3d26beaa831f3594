"""A text feature's value -> the bytes a graph reads: one rule for the trainer and the agent.

A text feature (schema kind ``text``) reaches the graph as its UTF-8 bytes, zero-padded
in ``text_bytes`` with its length in ``text_lengths`` (contract/schema.py). The graph
adds 1 to each byte (0 is padding) and masks past the length, so any byte, NUL
included, is a byte like any other. `encode_text` is the one definition of those bytes:
the trainer vectorizes with it (FeatureSchema.vectorize_text), the agent's msgspec tier
calls it per value, and the agent's C tier (native/_fastjson.c) reimplements it, tested
value for value against it (tests/jenga_edge/test_fastjson.py).

In this order:

1. ``None`` (missing or JSON null) is the empty text, length 0. Any other value that is
   not a string (a number, a boolean, an object, a list) is refused: a number is not a
   name, and guessing its spelling would make the two tiers disagree.
2. The string is encoded as UTF-8. A lone surrogate (only a lenient JSON reader lets one
   through; the agent's readers reject the line as invalid JSON) becomes U+FFFD.
3. ``normalize: dns`` lower-cases ASCII letters only (A-Z; other bytes, UTF-8 included,
   are kept as they are: IDNA names arrive as punycode ``xn--`` labels) and strips
   trailing dots (``Example.COM.`` -> ``example.com``), as resolvers compare names.
   ``none`` keeps the bytes.
4. A text longer than ``max_bytes`` is cut at a byte, never rejected: ``truncate: head``
   keeps the first ``max_bytes`` bytes, ``tail`` the last (for DNS names: the registered
   domain and the TLD). A cut may split a multi-byte character; the model reads bytes,
   so the trainer and the agent see the same partial sequence.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from .errors import EventError


class TextFeature(Protocol):
    """What encode_text reads of a schema Feature (a Protocol, not an import of
    schema.py, which imports this module: no import circle)."""

    @property
    def name(self) -> str: ...
    @property
    def normalize(self) -> Any: ...
    @property
    def truncate(self) -> Any: ...
    @property
    def text_limit(self) -> int: ...


_SURROGATES = re.compile("[\ud800-\udfff]")
_UPPER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")


def encode_text(value: Any, feature: TextFeature) -> bytes:
    """The bytes of `value` for text feature `feature` (see the module's rules)."""
    if value is None:
        return b""
    if type(value) is not str:
        kind = (
            "an object" if isinstance(value, dict) else "an array" if isinstance(value, list) else type(value).__name__
        )
        if kind in ("int", "float", "bool"):
            kind = "a boolean" if kind == "bool" else "a number"
        raise EventError(
            "wrong_type", f"field {feature.name!r} is {kind}, expected a string (text feature)", feature.name
        )
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raw = _SURROGATES.sub("\ufffd", value).encode("utf-8")
    if feature.normalize == "dns":
        raw = raw.translate(_UPPER).rstrip(b".")
    n = feature.text_limit  # >= 1: Feature.check() requires it of a text feature
    if len(raw) > n:
        raw = raw[-n:] if feature.truncate == "tail" else raw[:n]
    return raw
