"""Compiled field extraction for jenga_edge.decode (native/_fastjson.c)."""

from typing import Any, TypeAlias, final

import numpy as np
import numpy.typing as npt

# A plan's leaf: the (kind, index) targets a value fills, 1 to 4 of them; kind is
# 0 numeric, 1 boolean, 2 categorical, 3 key field, 4 time (an ISO 8601 string or epoch
# seconds, into a numeric column) (decode.py's _NUM, _BOOL, _CAT, _KEY, _TIME).
_Targets: TypeAlias = tuple[tuple[int, int], ...]
# JSON key (bytes) -> a nested object's spec, or a leaf.
_Spec: TypeAlias = dict[bytes, "_Spec | _Targets"]

def frame(buf: bytes, /) -> tuple[int, int]:
    """(lines, longest): the non-empty newline-terminated lines in buf (one trailing
    \\r stripped), and the longest raw line's length. Bytes after the last newline
    are not counted."""

def spans(buf: bytes, start: int, k: int, out: npt.NDArray[np.int64], /) -> int:
    """The next k non-empty lines from byte start, as int64 [start, stop) pairs in
    out [k, 2]; returns the byte after the k-th line's newline. ValueError if there
    are fewer than k."""

@final
class Plan:
    """A compiled field-extraction plan for one schema."""

    def __init__(
        self,
        spec: _Spec,
        n_num: int,
        n_cat: int,
        n_key: int,
        vocabs: tuple[dict[bytes, _Targets], ...],
        lower: tuple[bool, ...] = (),
    ) -> None:
        """`vocabs`: per categorical column, {category bytes: ((2, index),)};
        `lower`: per categorical column, lower-case ASCII values before the lookup."""

    def decode(
        self,
        lines: list[bytes] | tuple[bytes, npt.NDArray[np.int64]],
        num: npt.NDArray[np.float64],
        cat: npt.NDArray[np.int64],
        keys: list[list[Any]],
        status: npt.NDArray[np.uint8],
        /,
    ) -> int:
        """Lines accepted. Writes rows into num [n, n_num] (NaN = missing), cat
        [n, n_cat] (-1 = missing), keys (one list of n items per key field: the
        value msgspec would give; left as is when absent) and status [n] (0
        accepted, 1 leave the line to the Python decoder). `lines`: a list of
        bytes, or a buffer and its int64 [n, 2] line spans."""
