"""What the alert formats share: severity scales, ATT&CK ids from tags, addresses, the DNS
name of a text alert, times, the model reference. Nothing here raises on an alert's values."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any

from ...timestamps import parse_time

VENDOR = "JengaAI"
PRODUCT = "jenga-edge"

# An alert's priority (a syslog severity) on each format's scale: CEF 0-10 (0-3 low, 4-6
# medium, 7-8 high, 9-10 very high) and OCSF severity_id (1 Informational ... 5 Critical, 6 Fatal).
CEF_SEVERITY = {
    "emergency": 10,
    "alert": 9,
    "critical": 8,
    "error": 7,
    "warning": 5,
    "notice": 3,
    "informational": 1,
    "debug": 0,
}
OCSF_SEVERITY = {
    "emergency": (6, "Fatal"),
    "alert": (5, "Critical"),
    "critical": (5, "Critical"),
    "error": (4, "High"),
    "warning": (3, "Medium"),
    "notice": (2, "Low"),
    "informational": (1, "Informational"),
    "debug": (1, "Informational"),
}
SYSLOG_CODE = {name: code for code, name in enumerate(CEF_SEVERITY)}  # RFC 5424: emergency 0 ... debug 7

_TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
_TACTIC = re.compile(r"^TA\d{4}$")
# Where a text (DNS) alert carries the queried name: an `event.keys` entry (top level) or an
# `event.fields` entry (under `fields`); the first that holds a plausible name wins.
DOMAIN_KEYS = ("domain", "dns_query", "query", "qname", "rrname", "dns_rrname", "dns.rrname", "query_name")
_HOSTNAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_.])?$")


def priority(alert: dict[str, Any]) -> str:
    """The alert's priority name, lower case ('' if it has none)."""
    p = alert.get("priority")
    return p.lower() if isinstance(p, str) else ""


@lru_cache(maxsize=4096)  # the same few addresses alert again and again
def ip_version(value: str) -> int:
    """4 or 6 for an IP address, 0 for anything else."""
    try:
        return ipaddress.ip_address(value).version
    except ValueError:
        return 0


def address(value: Any) -> tuple[str | None, int]:
    """(the value as text, its IP version or 0); (None, 0) if absent."""
    if value is None or isinstance(value, (bool, dict, list)):
        return None, 0
    text = str(value)
    return (text, ip_version(text)) if text else (None, 0)


def port(value: Any) -> int | None:
    """A port number 0-65535, or None (absent, not a number, out of range)."""
    if isinstance(value, bool):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return n if 0 <= n <= 65535 else None


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None  # no NaN, no inf


def text(value: Any) -> str | None:
    """A scalar as text; None for absent, empty or structured values."""
    if value is None or isinstance(value, (dict, list)) or value == "":
        return None
    return str(value)


def epoch_ms(alert: dict[str, Any]) -> int | None:
    """The alert's timestamp in epoch milliseconds; None if it has no readable one."""
    ts = alert.get("timestamp")
    return _epoch_ms(ts) if isinstance(ts, str) else None


@lru_cache(maxsize=64)  # a batch's alerts share one timestamp
def _epoch_ms(ts: str) -> int | None:
    t = parse_time(ts)
    return round(t * 1000) if t is not None else None


def attack_ids(tags: Any) -> tuple[list[str], list[str], list[str]]:
    """(technique ids, sub-technique ids, tactic ids) named in the rule's tags, e.g. T1046,
    T1059.001 (whose technique T1059 is listed too), TA0007; each once, in tag order."""
    if not isinstance(tags, list) or not tags:
        return [], [], []
    try:
        found = _attack_ids(tuple(tags))
    except TypeError:  # an unhashable tag: not an id
        found = _attack_ids(tuple(t for t in tags if isinstance(t, str)))
    return list(found[0]), list(found[1]), list(found[2])


@lru_cache(maxsize=256)  # a rule's tags are the same on each of its alerts
def _attack_ids(tags: tuple[Any, ...]) -> tuple[list[str], list[str], list[str]]:
    techniques: list[str] = []
    subs: list[str] = []
    tactics: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            continue
        t = tag.strip().upper()
        if _TACTIC.match(t):
            tactics.append(t)
        elif _TECHNIQUE.match(t):
            if "." in t:
                subs.append(t)
                t = t.split(".")[0]
            techniques.append(t)
    return list(dict.fromkeys(techniques)), list(dict.fromkeys(subs)), list(dict.fromkeys(tactics))


def domain(alert: dict[str, Any]) -> str | None:
    """The DNS name a text alert is about, if it carries one (DOMAIN_KEYS at the top level,
    then under `fields`); a trailing dot is dropped; None when absent or not a host name."""
    fields = alert.get("fields")
    for where in (alert, fields if isinstance(fields, dict) else {}):
        for key in DOMAIN_KEYS:
            value = where.get(key)
            if isinstance(value, str):
                name = value.strip().rstrip(".")
                if _HOSTNAME.match(name) and not ip_version(name):
                    return name
    return None


def transport(alert: dict[str, Any]) -> str | None:
    """The IP transport (tcp, udp, icmp ...) from a `proto`/`protocol`/`transport` key or field, lower case."""
    fields = alert.get("fields")
    for where in (alert, fields if isinstance(fields, dict) else {}):
        for key in ("proto", "protocol", "transport"):
            value = where.get(key)
            if isinstance(value, str) and value.lower() in _TRANSPORTS:
                return value.lower()
    return None


_TRANSPORTS = frozenset({"tcp", "udp", "icmp", "ipv6-icmp", "icmpv6", "sctp", "gre", "esp", "ah", "igmp"})


def model_ref(alert: dict[str, Any]) -> dict[str, Any]:
    """What scored the alert: bundle id, task, graph file and sha256, score, threshold, and the
    predicted label of a classification task; keys without a value are left out."""
    model = alert.get("model")
    ref: dict[str, Any] = {}
    if isinstance(model, dict):
        for key, name in (("bundle_id", "bundle_id"), ("file", "graph_file"), ("sha256", "graph_sha256")):
            value = model.get(key)
            if value is not None and value != "" and not isinstance(value, (dict, list)):
                ref[name] = str(value)
    for key in ("task", "score", "threshold", "label"):
        value = alert.get(key)
        value = number(value) if key in ("score", "threshold") else text(value)
        if value is not None:
            ref[key] = value
    order = ("bundle_id", "task", "graph_file", "graph_sha256", "score", "threshold", "label")
    return {k: ref[k] for k in order if k in ref}


def agent(alert: dict[str, Any]) -> dict[str, str]:
    """The alert's agent block (id, hostname, version), as text, without empty values."""
    a = alert.get("agent")
    a = a if isinstance(a, dict) else {}
    out = {k: text(a.get(k)) for k in ("id", "hostname", "version")}
    return {k: v for k, v in out.items() if v is not None}


def action_summaries(alert: dict[str, Any]) -> list[str]:
    """Each action outcome as ``type:result`` (e.g. firewall:dry_run)."""
    out = []
    actions = alert.get("actions")
    for a in actions if isinstance(actions, list) else []:
        if isinstance(a, dict):
            kind = text(a.get("type")) or text(a.get("name")) or "action"
            result = text(a.get("result")) or text(a.get("status"))
            out.append(f"{kind}:{result}" if result else kind)
    return out


def summary(alert: dict[str, Any], ref: dict[str, Any]) -> str:
    """The alert's one-line message: the rule's `output` line, else rule, task and score (`ref`: its model_ref)."""
    output = text(alert.get("output"))
    if output:
        return output
    parts = [text(alert.get("rule")) or "alert"]
    if "task" in ref:
        parts.append(ref["task"])
    if "score" in ref:
        parts.append(f"score {ref['score']:.3f}" + (f" >= {ref['threshold']:.3f}" if "threshold" in ref else ""))
    return " ".join(parts)
