"""`format: cef`: an alert as one ArcSight CEF line (CEF:0), for syslog.

``CEF:0|JengaAI|jenga-edge|VERSION|RULE|NAME|SEVERITY|EXTENSION``: the signature id is the
rule, the name its output line (or rule, task and score), the severity 0-10 from the alert's
priority (common.CEF_SEVERITY). Escaping follows the CEF specification: in the header ``\\``
and ``|`` get a backslash; in extension values ``\\`` and ``=`` do, and a line feed or carriage
return is written ``\\n`` / ``\\r``. Any other control, separator or bidi character is first made
a visible escape (`contract.text.escape_text`), so a line never carries one raw. Extension keys
are ArcSight's: rt (epoch ms), externalId (the alert id), src/dst (IPv4), c6a2/c6a3 (IPv6),
shost/dhost (an address that is no IP), spt/dpt, proto, act (the action outcomes, type:result),
msg, cat (the task), dvchost, deviceExternalId (the agent id); the model in labelled custom
fields: cs1 modelBundleId, cs2 modelGraphSha256, cs3 modelTask, cs4 attackIds (ATT&CK ids in the
rule's tags), cs5 predictedLabel, cs6 dnsQueryName, cfp1 modelScore, cfp2 modelThreshold.
"""

from __future__ import annotations

import re
from typing import Any

from ...contract.text import escape_text
from . import common

_LABELS = {
    "cs1": "modelBundleId",
    "cs2": "modelGraphSha256",
    "cs3": "modelTask",
    "cs4": "attackIds",
    "cs5": "predictedLabel",
    "cs6": "dnsQueryName",
    "cfp1": "modelScore",
    "cfp2": "modelThreshold",
    "c6a2": "Source IPv6 Address",
    "c6a3": "Destination IPv6 Address",
}
_NEWLINE = re.compile(r"[\r\n]")
DEFAULT_SEVERITY = 5  # an alert whose priority names no syslog severity (as syslog's default warning)


def header_escape(value: Any) -> str:
    """A header field: no raw control character, then ``\\`` and ``|`` escaped."""
    text = escape_text(str(value), backslash=False)
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _cef_text(segment: str) -> str:
    return escape_text(segment, backslash=False).replace("\\", "\\\\").replace("=", "\\=")


def extension_escape(value: Any) -> str:
    """An extension value: ``\\`` and ``=`` escaped, each LF and CR written ``\\n`` / ``\\r`` (a
    parser gets them back exactly); any other control character becomes a visible escape whose
    backslash is escaped in turn, so a parser gets the text ``\\x00`` back, never the raw byte."""
    if isinstance(value, (int, float)):
        return str(value)  # nothing to escape in a number
    text = str(value)
    if text.isprintable():  # the common case
        if "\\" in text or "=" in text:
            return text.replace("\\", "\\\\").replace("=", "\\=")
        return text
    out, pos = [], 0
    for m in _NEWLINE.finditer(text):
        out += [_cef_text(text[pos : m.start()]), "\\n" if m.group() == "\n" else "\\r"]
        pos = m.end()
    out.append(_cef_text(text[pos:]))
    return "".join(out)


def _address(ext: list[tuple[str, Any]], value: Any, v4: str, v6: str, host: str) -> None:
    text, version = common.address(value)
    if text is None:
        return
    key = v4 if version == 4 else v6 if version == 6 else host
    ext.append((key, text))
    if key in _LABELS:
        ext.append((key + "Label", _LABELS[key]))


def _custom(ext: list[tuple[str, Any]], key: str, value: Any) -> None:
    if value is not None and value != "":
        ext += [(key, value), (key + "Label", _LABELS[key])]


def extension(alert: dict[str, Any], ref: dict[str, Any], msg: str) -> list[tuple[str, Any]]:
    """The extension's (key, value) pairs, in order (`ref`: the alert's model_ref, `msg` its summary)."""
    ext: list[tuple[str, Any]] = []
    ms = common.epoch_ms(alert)
    if ms is not None:
        ext.append(("rt", ms))
    alert_id = common.text(alert.get("alert_id"))
    if alert_id:
        ext.append(("externalId", alert_id))
    _address(ext, alert.get("src_ip"), "src", "c6a2", "shost")
    _address(ext, alert.get("dest_ip"), "dst", "c6a3", "dhost")
    for key, field in (("spt", "src_port"), ("dpt", "dest_port")):
        p = common.port(alert.get(field))
        if p is not None:
            ext.append((key, p))
    transport = common.transport(alert)
    if transport:
        ext.append(("proto", transport.upper()))
    acts = common.action_summaries(alert)
    if acts:
        ext.append(("act", ",".join(acts)))
    ext.append(("msg", msg))
    if "task" in ref:
        ext.append(("cat", ref["task"]))
    agent = common.agent(alert)
    if "hostname" in agent:
        ext.append(("dvchost", agent["hostname"]))
    if "id" in agent:
        ext.append(("deviceExternalId", agent["id"]))
    techniques, subs, tactics = common.attack_ids(alert.get("tags"))
    for key, value in (
        ("cs1", ref.get("bundle_id")),
        ("cs2", ref.get("graph_sha256")),
        ("cs3", ref.get("task")),
        ("cs4", ",".join(dict.fromkeys(tactics + techniques + subs))),
        ("cs5", ref.get("label")),
        ("cs6", common.domain(alert)),
        ("cfp1", ref.get("score")),
        ("cfp2", ref.get("threshold")),
    ):
        _custom(ext, key, value)
    return ext


def convert(alert: dict[str, Any]) -> str:
    """The CEF line of one alert (no trailing newline)."""
    agent = common.agent(alert)
    rule = common.text(alert.get("rule")) or "alert"
    severity = common.CEF_SEVERITY.get(common.priority(alert), DEFAULT_SEVERITY)
    ref = common.model_ref(alert)
    name = common.summary(alert, ref)
    header = [
        "CEF:0",
        header_escape(common.VENDOR),
        header_escape(common.PRODUCT),
        header_escape(agent.get("version", "")),
        header_escape(rule),
        header_escape(name),
        str(severity),
    ]
    ext = " ".join(f"{k}={extension_escape(v)}" for k, v in extension(alert, ref, name))
    return "|".join(header) + "|" + ext
