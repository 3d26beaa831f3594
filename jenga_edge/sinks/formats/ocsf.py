"""`format: ocsf`: an alert as an OCSF 1.x Detection Finding (class_uid 2004; checked against OCSF 1.7.0).

Category Findings (2), activity Create (type_uid 200401), ``is_alert`` true, ``status_id`` New;
``severity_id`` from the alert's priority (common.OCSF_SEVERITY); ``time`` and
``finding_info.created_time`` in epoch milliseconds. ``finding_info``: uid (the alert id),
title (the rule), desc (the rule's output line or a summary), types (the task), attacks (ATT&CK
ids in the rule's tags) and ``analytic``, the model reference OCSF 1.7 defines: a scored
alert's analytic is the graph (type_id 4 "Learning (ML/DL)", uid its sha256, name the task,
version the bundle id); a counting rule's is the rule (type_id 1 "Rule"). ``confidence_score`` is
the score on 0-100. The addresses, ports and a text alert's DNS name go to ``evidences[0]``
(src_endpoint, dst_endpoint, query) and, as IPs and host names, to ``observables``. What OCSF has
no attribute for (bundle id and threshold in full, label, actions, fields, source) is under
``unmapped.jenga`` (with the agent's id and host name).
"""

from __future__ import annotations

import time
from typing import Any

from . import common

OCSF_VERSION = "1.7.0"
_CLASS = {
    "activity_id": 1,
    "activity_name": "Create",
    "category_uid": 2,
    "category_name": "Findings",
    "class_uid": 2004,
    "class_name": "Detection Finding",
    "type_uid": 200401,
    "type_name": "Detection Finding: Create",
}
_OBSERVABLE_IP = (2, "IP Address")
_OBSERVABLE_HOST = (1, "Hostname")


def _endpoint(alert: dict[str, Any], ip_key: str, port_key: str) -> dict[str, Any]:
    value, version = common.address(alert.get(ip_key))
    out: dict[str, Any] = {}
    if value is not None:
        out["ip" if version else "name"] = value
    p = common.port(alert.get(port_key))
    if p is not None and out:  # a network_endpoint needs an ip or a name, a port alone is not one
        out["port"] = p
    return out


def _analytic(alert: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    if "task" not in ref:
        rule = common.text(alert.get("rule")) or "rule"
        return {"name": rule, "uid": rule, "type_id": 1, "type": "Rule"}
    analytic: dict[str, Any] = {"name": ref["task"], "type_id": 4, "type": "Learning (ML/DL)"}
    if "graph_sha256" in ref:
        analytic["uid"] = ref["graph_sha256"]
    if "bundle_id" in ref:
        analytic["version"] = ref["bundle_id"]
    return analytic


def _attacks(tags: Any) -> list[dict[str, Any]]:
    techniques, subs, tactics = common.attack_ids(tags)
    attacks: list[dict[str, Any]] = [
        {"technique": {"uid": t}} for t in techniques if not any(s.startswith(t) for s in subs)
    ]
    attacks += [{"technique": {"uid": s.split(".")[0]}, "sub_technique": {"uid": s}} for s in subs]
    attacks += [{"tactic": {"uid": t}} for t in tactics]
    return attacks


def _finding_info(alert: dict[str, Any], ref: dict[str, Any], ms: int | None, desc: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "uid": common.text(alert.get("alert_id")) or "",
        "title": common.text(alert.get("rule")) or "alert",
    }
    info["desc"] = desc
    if ms is not None:
        info["created_time"] = ms
    if "task" in ref:
        info["types"] = [ref["task"]]
    info["analytic"] = _analytic(alert, ref)
    attacks = _attacks(alert.get("tags"))
    if attacks:
        info["attacks"] = attacks
    source = common.text(alert.get("source"))
    if source:
        info["data_sources"] = [source]
    return info


def _evidence(alert: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(evidences[0], observables): endpoints and the DNS query, and the IPs and host names in them."""
    evidence: dict[str, Any] = {}
    observables: list[dict[str, Any]] = []
    for side, ip_key, port_key in (("src_endpoint", "src_ip", "src_port"), ("dst_endpoint", "dest_ip", "dest_port")):
        ep = _endpoint(alert, ip_key, port_key)
        if ep:
            evidence[side] = ep
            if "ip" in ep:
                observables.append(_observable(f"evidences[0].{side}.ip", ep["ip"], _OBSERVABLE_IP))
    name = common.domain(alert)
    if name:
        evidence["query"] = {"hostname": name}
        observables.append(_observable("evidences[0].query.hostname", name, _OBSERVABLE_HOST))
    return evidence, observables


def _observable(name: str, value: str, kind: tuple[int, str]) -> dict[str, Any]:
    return {"name": name, "type_id": kind[0], "type": kind[1], "value": value}


def _unmapped(alert: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    jenga: dict[str, Any] = {"model": ref} if ref else {}
    for key in ("agent", "actions", "fields", "target", "source", "priority"):
        value = alert.get(key)
        if value:
            jenga[key] = value
    return {"jenga": jenga} if jenga else {}


def convert(alert: dict[str, Any]) -> dict[str, Any]:
    """The OCSF Detection Finding of one alert."""
    ref = common.model_ref(alert)
    ms = common.epoch_ms(alert)
    message = common.summary(alert, ref)
    severity_id, severity = common.OCSF_SEVERITY.get(common.priority(alert), (0, "Unknown"))
    agent = common.agent(alert)
    product: dict[str, Any] = {"name": common.PRODUCT, "vendor_name": common.VENDOR}
    if "version" in agent:
        product["version"] = agent["version"]
    metadata: dict[str, Any] = {"product": product, "version": OCSF_VERSION, "log_name": "alerts"}
    alert_id = common.text(alert.get("alert_id"))
    if alert_id:
        metadata["uid"] = alert_id
    tags = alert.get("tags")
    if isinstance(tags, list) and tags:
        metadata["labels"] = [str(t) for t in tags]
    finding: dict[str, Any] = {
        **_CLASS,
        "severity_id": severity_id,
        "severity": severity,
        "time": ms if ms is not None else int(time.time() * 1000),  # required: else the conversion's
        "is_alert": True,
        "status_id": 1,
        "status": "New",
        "message": message,
        "finding_info": _finding_info(alert, ref, ms, message),
        "metadata": metadata,
    }
    if "score" in ref:
        finding["confidence_score"] = round(min(max(ref["score"], 0.0), 1.0) * 100)
    evidence, observables = _evidence(alert)
    if evidence:
        finding["evidences"] = [evidence]
    if observables:
        finding["observables"] = observables
    unmapped = _unmapped(alert, ref)
    if unmapped:
        finding["unmapped"] = unmapped
    return finding
