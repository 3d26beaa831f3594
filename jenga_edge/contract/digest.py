"""sha256 without OpenSSL.

hashlib's sha256 comes from OpenSSL, and loading libcrypto costs the agent
about 3.5 MB of resident memory, 5 % of a small gateway's budget, to hash a
bundle of a few hundred KB once at start-up. CPython's own implementation is
slower per byte but needs nothing loaded; hashlib stays the fallback.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the private modules have no stubs; their sha256 is hashlib's, without OpenSSL
    from hashlib import sha256
else:
    try:
        from _sha2 import sha256  # CPython >= 3.12
    except ImportError:
        try:
            from _sha256 import sha256  # CPython <= 3.11
        except ImportError:  # other interpreters
            from hashlib import sha256


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    h = sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


__all__ = ["sha256", "sha256_file"]
