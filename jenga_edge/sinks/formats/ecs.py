"""`format: ecs`: an alert as an Elastic Common Schema 8.x document (checked against ECS 8.17).

``event.kind: alert``; ``event.category`` intrusion_detection (and network when the alert has
addresses or a transport), ``event.type`` info; ``event.severity`` is the RFC 5424 code of the
alert's priority (0 emergency ... 7 debug, also in ``log.syslog.severity``), ``event.risk_score``
the model's score as it is (0-1) and ``event.risk_score_norm`` the same on 0-100. Addresses that
are IPs go to ``source.ip``/``destination.ip`` (and ``related.ip``), any other value only to
``.address``; the rule to ``rule.*`` (``rule.category`` is the task); ATT&CK ids in the rule's tags
to ``threat.*``; a text alert's DNS name to ``dns.question.name``. What ECS has no field for
lives in the custom field set ``Jenga`` (capitalised, as ECS advises for custom fields, so no
future ECS field collides): ``Jenga.model`` (bundle_id, task, graph_file, graph_sha256, score,
threshold, label), ``Jenga.actions`` (the outcomes), ``Jenga.fields`` (the alert's ``fields``),
``Jenga.source`` (the input it came from), ``Jenga.target``.
"""

from __future__ import annotations

from typing import Any

from ...timestamps import now_iso
from . import common

ECS_VERSION = "8.17.0"
CUSTOM = "Jenga"  # the custom field set


def _endpoint(alert: dict[str, Any], ip_key: str, port_key: str) -> dict[str, Any]:
    value, version = common.address(alert.get(ip_key))
    out: dict[str, Any] = {}
    if value is not None:
        out["address"] = value
        if version and "%" not in value:  # Elasticsearch's ip type takes no IPv6 zone (fe80::1%eth0)
            out["ip"] = value
    p = common.port(alert.get(port_key))
    if p is not None:
        out["port"] = p
    return out


def _threat(tags: Any) -> dict[str, Any] | None:
    techniques, subs, tactics = common.attack_ids(tags)
    if not (techniques or tactics):
        return None
    threat: dict[str, Any] = {"framework": "MITRE ATT&CK"}
    if techniques:
        threat["technique"] = {"id": techniques}
        if subs:
            threat["technique"]["subtechnique"] = {"id": subs}
    if tactics:
        threat["tactic"] = {"id": tactics}
    return threat


def _event(alert: dict[str, Any], networked: bool, ref: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": "alert",
        "category": ["intrusion_detection", "network"] if networked else ["intrusion_detection"],
        "type": ["info"],
        "module": "jenga_edge",
        "dataset": "jenga_edge.alert",
    }
    alert_id = common.text(alert.get("alert_id"))
    if alert_id:
        event["id"] = alert_id
    ts = common.text(alert.get("timestamp"))
    if ts and common.epoch_ms(alert) is not None:
        event["created"] = ts
    code = common.SYSLOG_CODE.get(common.priority(alert))
    if code is not None:
        event["severity"] = code
    if "score" in ref:
        event["risk_score"] = ref["score"]
        event["risk_score_norm"] = round(min(max(ref["score"], 0.0), 1.0) * 100, 3)
    return event


def _custom(alert: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    custom: dict[str, Any] = {}
    if ref:
        custom["model"] = ref
    for key in ("actions", "fields", "target"):
        value = alert.get(key)
        if value:
            custom[key] = value
    source = common.text(alert.get("source"))
    if source:
        custom["source"] = source
    return custom


def convert(alert: dict[str, Any]) -> dict[str, Any]:
    """The ECS document of one alert."""
    ref = common.model_ref(alert)
    src = _endpoint(alert, "src_ip", "src_port")
    dst = _endpoint(alert, "dest_ip", "dest_port")
    transport = common.transport(alert)
    ts = common.text(alert.get("timestamp"))
    # @timestamp is required: an alert without a readable time gets the conversion's
    doc: dict[str, Any] = {"@timestamp": ts if ts and common.epoch_ms(alert) is not None else now_iso()}
    doc["ecs"] = {"version": ECS_VERSION}
    doc["message"] = common.summary(alert, ref)
    doc["event"] = _event(alert, bool(src or dst or transport), ref)
    rule = common.text(alert.get("rule"))
    if rule:
        doc["rule"] = {"name": rule, "ruleset": common.PRODUCT}
        if "task" in ref:
            doc["rule"]["category"] = ref["task"]
    if src:
        doc["source"] = src
    if dst:
        doc["destination"] = dst
    if transport:
        doc["network"] = {"transport": transport}
    name = common.domain(alert)
    if name:
        doc["dns"] = {"question": {"name": name}}
    ips = [e["ip"] for e in (src, dst) if "ip" in e]
    if ips or name:
        doc["related"] = {k: v for k, v in (("ip", list(dict.fromkeys(ips))), ("hosts", [name] if name else [])) if v}
    threat = _threat(alert.get("tags"))
    if threat:
        doc["threat"] = threat
    agent = common.agent(alert)
    doc["agent"] = {"type": common.PRODUCT, **{k: agent[k] for k in ("id", "version") if k in agent}}
    if "hostname" in agent:
        doc["agent"]["name"] = agent["hostname"]
    doc["observer"] = {"vendor": common.VENDOR, "product": common.PRODUCT, "type": "ids"}
    if "hostname" in agent:
        doc["observer"]["hostname"] = agent["hostname"]
    if "version" in agent:
        doc["observer"]["version"] = agent["version"]
    prio = common.priority(alert)
    if prio in common.SYSLOG_CODE:
        doc["log"] = {"syslog": {"severity": {"code": common.SYSLOG_CODE[prio], "name": prio}}}
    tags = alert.get("tags")
    if isinstance(tags, list) and tags:
        doc["tags"] = [str(t) for t in tags]
    custom = _custom(alert, ref)
    if custom:
        doc[CUSTOM] = custom
    return doc
