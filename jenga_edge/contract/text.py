"""Text from outside (an event, a peer, a file name) made inert for a terminal, a log or a line.

Every human-readable output (the stdout sink's text lines, `jenga-edge alerts`,
the agent's log, syslog values) shows values an attacker may choose: a
``src_ip`` holding a newline could forge a second alert line, an ANSI escape
could rewrite the operator's terminal, a bidi override could make ``1.2.3.4``
read as ``4.3.2.1``. `escape_text` writes each such character as a visible
backslash escape, so one record stays one line and nothing reaches a terminal as
a control sequence:

* C0 controls U+0000-U+001F (``\\t``, ``\\n``, ``\\r``, else ``\\xNN``), DEL and the
  C1 controls U+0080-U+009F (``\\x7f``, ``\\x9b``: U+009B is a one-character CSI);
* line and paragraph separators U+2028/U+2029, and the bidi controls U+061C,
  U+200E/U+200F, U+202A-U+202E and U+2066-U+2069 (``\\u2028``, ``\\u202e``);
* lone surrogates U+D800-U+DFFF (``\\udc80``), which could not even be encoded;
* the backslash itself (``\\\\``), so the escaping is unambiguous.

JSON output needs none of this for its syntax, but its strings may carry DEL, C1,
separator and bidi characters raw; `json_text_safe` rewrites those as JSON
``\\uXXXX`` escapes, which every JSON reader decodes back.
"""

from __future__ import annotations

import re

# DEL, C1, bidi controls, line/paragraph separators, lone surrogates: what JSON lets through raw.
_RAW_IN_JSON = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[\x00-\x1f{_RAW_IN_JSON}\\\\]")
_UNSAFE_KEEP_BACKSLASH = re.compile(f"[\x00-\x1f{_RAW_IN_JSON}]")
_UNSAFE_IN_JSON = re.compile(f"[{_RAW_IN_JSON}]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    named = _NAMED.get(c)
    if named is not None:
        return named
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_text(text: str, backslash: bool = True) -> str:
    """`text` with control, separator and bidi characters (and backslashes) written as
    backslash escapes: the result is one line that drives no terminal. `backslash=False`
    leaves backslashes as they are, for a format that escapes them itself (syslog SD)."""
    if text.isprintable() and (not backslash or "\\" not in text):  # the common case, in C
        return text
    return (_UNSAFE if backslash else _UNSAFE_KEEP_BACKSLASH).sub(_escape, text)


def terminal_safe(text: str, limit: int = 500) -> str:
    """`escape_text(text)`, cut at `limit` characters (a log line a peer cannot flood)."""
    out = escape_text(text)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _json_escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


# The UTF-8 lead bytes of those characters (DEL; C1 in U+0080-U+00BF; U+061C in
# U+0600-U+063F; the rest in U+2000-U+2FFF): JSON text holding none of them is returned as
# it is, after a few memchr searches instead of a scan per character.
_JSON_SUSPECT = (b"\x7f", b"\xc2", b"\xd8", b"\xe2")


def json_text_safe(data: bytes) -> str:
    """UTF-8 JSON text as str, with DEL, C1, separator and bidi characters written as
    ``\\uXXXX`` escapes (they can only occur inside JSON strings, where such an escape
    means the same character). C0 controls are escaped by every JSON encoder already."""
    text = data.decode("utf-8")
    if data.isascii():  # the common case: only DEL can be there
        return text if data.find(b"\x7f") < 0 else text.replace("\x7f", "\\u007f")
    if all(data.find(s) < 0 for s in _JSON_SUSPECT):
        return text
    return _UNSAFE_IN_JSON.sub(_json_escape, text)
