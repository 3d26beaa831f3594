"""Compiled field extraction for jenga_edge.decode (native/_fastjson.c)."""

from typing import Any, TypeAlias, final

import numpy as np
import numpy.typing as npt

# A plan's leaf: the (kind, index) targets a value fills, 1 to 4 of them; kind is
# 0 numeric, 1 boolean, 2 categorical, 3 key field, 4 time (an ISO 8601 string or epoch
# seconds, into a numeric column), 5 text (a string's bytes, encode_text's rules)
# (decode.py's _NUM, _BOOL, _CAT, _KEY, _TIME, _TEXT).
# A target may add (group, priority): the name it fills is read from the first present of
# several paths (group: that name, priority: the path's place, 0 first).
_Targets: TypeAlias = tuple[tuple[int, ...], ...]
# JSON key (bytes) -> a nested object's spec, [a spec of element indices (b"0")] for a
# list, or a leaf.
_Spec: TypeAlias = dict[bytes, "_Spec | list[_Spec] | _Targets"]

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
        text: tuple[tuple[int, bool, bool], ...] = (),
        text_width: int = 0,
        n_groups: int = 0,
        strict: tuple[bytes, ...] = (),
    ) -> None:
        """`vocabs`: per categorical column, {category bytes: ((2, index),)};
        `lower`: per categorical column, lower-case ASCII values before the lookup;
        `text`: per text column, (max_bytes, normalize dns, truncate tail), each
        max_bytes at most `text_width`, the text block's last axis; `n_groups`: the
        first-present groups targets may name; `strict`: top-level keys whose whole
        value is checked as msgspec decodes it (UTF-8 of every string and key, floats
        in range), read or not."""

    def decode(
        self,
        lines: list[bytes] | tuple[bytes, npt.NDArray[np.int64]],
        num: npt.NDArray[np.float64],
        cat: npt.NDArray[np.int64],
        keys: list[list[Any]],
        status: npt.NDArray[np.uint8],
        text: npt.NDArray[np.uint8] = ...,
        text_len: npt.NDArray[np.int64] = ...,
        /,
    ) -> int:
        """Lines accepted. Writes rows into num [n, n_num] (NaN = missing), cat
        [n, n_cat] (-1 = missing), keys (one list of n items per key field: the
        value msgspec would give; left as is when absent) and status [n] (0
        accepted, 1 leave the line to the Python decoder); with text columns (and
        only then) text [n, n_text, text_width] and text_len [n, n_text] (-1 =
        absent) too. `lines`: a list of
        bytes, or a buffer and its int64 [n, 2] line spans."""
