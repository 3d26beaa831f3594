"""Tests for jenga_edge/sinks/formats/: ECS, OCSF and CEF alerts, checked against the official
definitions vendored in tests/fixtures/alert_formats/ (README.md there: repository, tag, commit,
licence, sha256) and, for CEF, against a parser written here from the CEF specification."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import re
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from jenga_edge.contract.errors import ConfigError
from jenga_edge.sinks import stdout, syslog
from jenga_edge.sinks.base import encode
from jenga_edge.sinks.formats import cef, common, converter, ecs, ocsf
from jenga_edge.sinks.jsonl import JsonlSink
from jenga_edge.sinks.stdout import StdoutSink
from jenga_edge.sinks.syslog import SyslogSink, fit_message
from tests.jenga_edge.test_sinks import HEADER_RE, make_alert, sinks_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alert_formats"
ECS_DEF = json.loads((FIXTURES / "ecs_fields.json").read_text())
OCSF_DEF = json.loads((FIXTURES / "ocsf_detection_finding.json").read_text())

HOSTILE = 'a=b c=d | e\\f\\ \n g\r h\x00 \x1b[2J \u202e "q" ]|'


def full_alert(**over: Any) -> dict[str, Any]:
    """A scored network alert as the agent writes it (docs/agent.md, "The alert")."""
    alert = make_alert(
        alert_id="5f0c9a12-1042",
        model={"bundle_id": "5b" * 32, "file": "threat.onnx", "sha256": "9a" * 32},
        src_port=51234,
        fields={"protocol": "tcp"},
        output="attack on admin port 22 from 203.0.113.7 (score 0.970)",
        tags=["network", "T1110", "T1059.001", "TA0006"],
        actions=[{"type": "firewall", "result": "dry_run", "name": "fw"}],
    )
    alert.update(over)
    return alert


def counting_alert() -> dict[str, Any]:
    """A counting rule's alert: no task, score, threshold or model."""
    return make_alert(task=None, score=None, threshold=None, model=None, priority="warning", rule="many_conns")


def dns_alert(where: str = "fields") -> dict[str, Any]:
    """A text (DNS) alert: the queried name under `fields` or among the keys, no destination."""
    alert = make_alert(task="dga", rule="dga_domain", dest_ip=None, dest_port=None, label="dga")
    if where == "fields":
        alert["fields"] = {"domain": "xk2j9qpl0a.example.com."}
    else:
        alert["query"] = "xk2j9qpl0a.example.com"
        alert["fields"] = {}
    return alert


def odd_alert() -> dict[str, Any]:
    """What a hostile or sloppy event can put in an alert: addresses that are not IPs, a port
    that is no number, tags that are no list, a priority no one knows, control characters."""
    return make_alert(
        src_ip="not-an-ip" + HOSTILE,
        dest_ip=["10.0.0.1"],
        dest_port="ssh",
        src_port=70000,
        priority="loud",
        score=float("nan"),
        threshold=True,
        tags="T1046",
        rule=HOSTILE,
        output=HOSTILE,
        fields={"domain": "not a host name", "proto": 6},
        agent="gw",
        model="m",
        timestamp="yesterday",
    )


ALERTS = {
    "network": full_alert(),
    "ipv6": full_alert(src_ip="2001:db8::7", dest_ip="fe80::1%eth0"),
    "counting": counting_alert(),
    "dns_fields": dns_alert("fields"),
    "dns_keys": dns_alert("keys"),
    "odd": odd_alert(),
    "empty": {},
}


# ---- ECS: every field in the ECS 8.17 field reference, with its type and allowed values


def _ecs_type_ok(ftype: str, value: Any) -> bool:
    if ftype in ("keyword", "constant_keyword", "wildcard", "text", "match_only_text"):
        return isinstance(value, str)
    if ftype in ("long", "integer", "short", "byte", "unsigned_long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if ftype in ("float", "half_float", "scaled_float", "double"):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ftype == "boolean":
        return isinstance(value, bool)
    if ftype == "date":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except (AttributeError, ValueError):
            return False
        return True
    if ftype == "ip":
        try:
            ipaddress.ip_address(value)  # no IPv6 zone: Elasticsearch's ip type refuses one
        except (AttributeError, ValueError):
            return False
        return True
    return False  # a type these alerts should not need (geo_point, nested ...)


def _ecs_leaves(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in doc.items():
        name = f"{prefix}{k}"
        field = ECS_DEF["fields"].get(name)
        leaf = field and (field.get("object_type") or field["type"] == "flattened")  # labels: any key
        if isinstance(v, dict) and not leaf:
            out += _ecs_leaves(v, name + ".")
        else:
            out.append((name, v))
    return out


def ecs_problems(doc: dict[str, Any]) -> list[str]:
    """What in `doc` the ECS field reference does not allow; the custom field set is exempt."""
    problems = []
    fields = ECS_DEF["fields"]
    for name in (n for n, f in fields.items() if f.get("required")):
        if name not in dict(_ecs_leaves(doc)):
            problems.append(f"{name}: required by ECS, missing")
    for name, value in _ecs_leaves({k: v for k, v in doc.items() if k != ecs.CUSTOM}):
        field = fields.get(name)
        if field is None:
            problems.append(f"{name}: not an ECS field")
            continue
        if field.get("object_type"):  # labels: keyword values under any key
            if not all(isinstance(v, str) for v in value.values()):
                problems.append(f"{name}: values must be {field.get('object_type')}")
            continue
        if isinstance(value, list) != field["array"]:
            problems.append(f"{name}: {'an array' if field['array'] else 'a single value'} expected")
        for v in value if isinstance(value, list) else [value]:
            if not _ecs_type_ok(field["type"], v):
                problems.append(f"{name}: {v!r} is not a valid {field['type']}")
            if "allowed" in field and v not in field["allowed"]:
                problems.append(f"{name}: {v!r} not among ECS's allowed values")
    event = doc.get("event", {})
    for category in event.get("category", []):
        expected = fields["event.category"]["allowed"].get(category, [])
        for t in event.get("type", []):
            if t not in expected:
                problems.append(f"event.type {t!r} is not expected with event.category {category!r}")
    if ecs.CUSTOM in doc and ecs.CUSTOM.lower() == ecs.CUSTOM:
        problems.append("the custom field set must be capitalised (ECS custom-fields advice)")
    return problems


@pytest.mark.parametrize("kind", list(ALERTS))
def test_ecs_documents_use_only_ecs_fields_with_their_types(kind):
    doc = ecs.convert(ALERTS[kind])
    assert ecs_problems(doc) == []
    json.dumps(doc, allow_nan=False)  # plain JSON, no NaN


def test_the_ecs_check_can_fail():
    doc = ecs.convert(full_alert())
    doc["event"]["kind"] = "finding"  # not an allowed value
    doc["source"]["ip"] = "not-an-ip"
    doc["source"]["port"] = "22"
    doc["event"]["category"] = "network"  # ECS expects an array
    doc["rule"]["made_up"] = "x"
    del doc["ecs"]
    problems = "\n".join(ecs_problems(doc))
    for what in ("event.kind", "source.ip", "source.port", "event.category", "rule.made_up", "ecs.version"):
        assert what in problems


def test_ecs_maps_the_alert():
    alert = full_alert()
    doc = ecs.convert(alert)
    assert doc["@timestamp"] == doc["event"]["created"] == alert["timestamp"]
    assert doc["ecs"]["version"] == ECS_DEF["ecs_version"]
    assert doc["event"]["kind"] == "alert" and doc["event"]["id"] == alert["alert_id"]
    assert doc["event"]["category"] == ["intrusion_detection", "network"]
    assert doc["event"]["severity"] == 2 and doc["log"]["syslog"]["severity"] == {"code": 2, "name": "critical"}
    assert doc["event"]["risk_score"] == 0.97 and doc["event"]["risk_score_norm"] == 97.0
    assert doc["source"] == {"address": "203.0.113.7", "ip": "203.0.113.7", "port": 51234}
    assert doc["destination"] == {"address": "10.0.0.5", "ip": "10.0.0.5", "port": 22}
    assert doc["network"] == {"transport": "tcp"}
    assert doc["rule"] == {"name": "ssh_block", "ruleset": "jenga-edge", "category": "threat"}
    assert doc["threat"] == {
        "framework": "MITRE ATT&CK",
        "technique": {"id": ["T1110", "T1059"], "subtechnique": {"id": ["T1059.001"]}},
        "tactic": {"id": ["TA0006"]},
    }
    assert doc["agent"]["id"] == "gw-1" and doc["observer"]["hostname"] == "gw-host"
    assert doc["message"] == alert["output"] and doc["tags"] == alert["tags"]
    assert doc["Jenga"]["model"] == {
        "bundle_id": "5b" * 32,
        "task": "threat",
        "graph_file": "threat.onnx",
        "graph_sha256": "9a" * 32,
        "score": 0.97,
        "threshold": 0.8,
    }
    assert doc["Jenga"]["actions"] == alert["actions"]


def test_ecs_puts_a_text_alerts_name_in_dns_question_name():
    for where in ("fields", "keys"):
        doc = ecs.convert(dns_alert(where))
        assert doc["dns"] == {"question": {"name": "xk2j9qpl0a.example.com"}}
        assert doc["related"]["hosts"] == ["xk2j9qpl0a.example.com"]
        assert doc["Jenga"]["model"]["label"] == "dga"
    assert "dns" not in ecs.convert(full_alert())
    assert "dns" not in ecs.convert(odd_alert())  # "not a host name"


def test_ecs_keeps_an_address_that_is_no_ip_out_of_the_ip_fields():
    doc = ecs.convert(odd_alert())
    assert "ip" not in doc["source"] and doc["source"]["address"].startswith("not-an-ip")
    assert "destination" not in doc and "threat" not in doc and "event.severity" not in doc["event"]
    assert "created" not in doc["event"]  # "yesterday" is no date: left out, never a bad one
    assert doc["@timestamp"] != "yesterday"  # required by ECS: the time of the conversion
    assert ecs_problems(doc) == []


# ---- OCSF: the Detection Finding class of OCSF 1.7.0 and its objects


def _ocsf_value_problems(where: str, attr: dict[str, Any], value: Any) -> list[str]:
    t = attr["type"]
    if t in OCSF_DEF["objects"]:
        if not isinstance(value, dict):
            return [f"{where}: an object {t} expected"]
        return ocsf_problems(value, OCSF_DEF["objects"][t], where + ".")
    if t == "object":
        return [] if isinstance(value, dict) else [f"{where}: an object expected"]
    if t not in OCSF_DEF["types"]:
        return [f"{where}: object type {t} is not vendored (add it to vendor.py's list)"]
    spec = OCSF_DEF["types"][t]
    base = spec.get("type", t)
    checks = {
        "string_t": lambda v: isinstance(v, str),
        "integer_t": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31,
        "long_t": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float_t": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean_t": lambda v: isinstance(v, bool),
        "json_t": lambda v: True,
    }
    if not checks[base](value):
        return [f"{where}: {value!r} is not a {t}"]
    problems = []
    if "regex" in spec and not re.search(spec["regex"], value):
        problems.append(f"{where}: {value!r} does not match {t}'s pattern")
    if "range" in spec and not spec["range"][0] <= value <= spec["range"][1]:
        problems.append(f"{where}: {value!r} out of {t}'s range")
    if "max_len" in spec and len(value) > spec["max_len"]:
        problems.append(f"{where}: {value!r} longer than {t} allows")
    return problems


def ocsf_problems(obj: dict[str, Any], spec: dict[str, Any], where: str = "") -> list[str]:
    """What in `obj` the OCSF class or object `spec` does not allow."""
    attrs = spec["attributes"]
    problems = [
        f"{where}{k}: required, missing" for k, a in attrs.items() if a["requirement"] == "required" and k not in obj
    ]
    for group in (spec.get("constraints", {}).get("at_least_one", []),):
        if group and not any(k in obj for k in group):
            problems.append(f"{where.rstrip('.') or 'class'}: needs at least one of {group}")
    for key, value in obj.items():
        attr = attrs.get(key)
        if attr is None:
            problems.append(f"{where}{key}: not an attribute here")
            continue
        if isinstance(value, list) != bool(attr.get("array")):
            problems.append(f"{where}{key}: {'an array' if attr.get('array') else 'a single value'} expected")
            continue
        for i, v in enumerate(value if isinstance(value, list) else [value]):
            at = f"{where}{key}[{i}]" if isinstance(value, list) else f"{where}{key}"
            problems += _ocsf_value_problems(at, attr, v)
            if "enum" in attr and str(v) not in attr["enum"]:
                problems.append(f"{at}: {v!r} not among {sorted(attr['enum'])}")
        sibling = attr.get("sibling")
        caption = attr.get("enum", {}).get(str(value))
        if sibling in obj and caption is not None and str(value) != "99" and obj[sibling] != caption:
            problems.append(f"{where}{sibling}: {obj[sibling]!r} is not the caption of {key} {value}")
    return [p for p in problems if p]


@pytest.mark.parametrize("kind", list(ALERTS))
def test_ocsf_findings_are_valid_detection_findings(kind):
    finding = ocsf.convert(ALERTS[kind])
    assert ocsf_problems(finding, OCSF_DEF["class"]) == []
    assert finding["class_uid"] == OCSF_DEF["class"]["class_uid"] == 2004
    assert finding["metadata"]["version"] == OCSF_DEF["ocsf_version"]
    json.dumps(finding, allow_nan=False)


def test_the_ocsf_check_can_fail():
    finding = ocsf.convert(full_alert())
    finding["status_id"] = 7  # no such status
    finding["severity"] = "Loud"  # not severity_id 5's caption
    finding["finding_info"]["analytic"]["type_id"] = "4"  # a string, not an integer
    finding["evidences"][0]["src_endpoint"]["port"] = 70000
    finding["evidences"][0]["src_endpoint"]["ip"] = "10.0.0.300"
    finding["observables"][0]["type_id"] = 1000
    finding["made_up"] = 1
    del finding["finding_info"]["uid"]
    finding["evidences"].append({})
    problems = "\n".join(ocsf_problems(finding, OCSF_DEF["class"]))
    for what in (
        "status_id: 7",
        "severity: 'Loud'",
        "analytic.type_id",
        "src_endpoint.port",
        "src_endpoint.ip",
        "observables[0].type_id",
        "made_up",
        "finding_info.uid: required",
        "evidences[1]: needs at least one",
    ):
        assert what in problems, what


def test_ocsf_maps_the_alert_and_its_model():
    alert = full_alert()
    f = ocsf.convert(alert)
    assert (f["category_uid"], f["type_uid"], f["activity_id"]) == (2, 200401, 1)
    assert (f["severity_id"], f["severity"]) == (5, "Critical")
    assert f["time"] == f["finding_info"]["created_time"] == 1795626000123
    info = f["finding_info"]
    assert info["uid"] == alert["alert_id"] and info["title"] == "ssh_block" and info["types"] == ["threat"]
    assert info["analytic"] == {
        "name": "threat",
        "uid": "9a" * 32,
        "type_id": 4,
        "type": "Learning (ML/DL)",
        "version": "5b" * 32,
    }
    assert {"technique": {"uid": "T1110"}} in info["attacks"]
    assert {"technique": {"uid": "T1059"}, "sub_technique": {"uid": "T1059.001"}} in info["attacks"]
    assert f["confidence_score"] == 97
    assert f["evidences"] == [
        {"src_endpoint": {"ip": "203.0.113.7", "port": 51234}, "dst_endpoint": {"ip": "10.0.0.5", "port": 22}}
    ]
    assert [(o["name"], o["type_id"], o["value"]) for o in f["observables"]] == [
        ("evidences[0].src_endpoint.ip", 2, "203.0.113.7"),
        ("evidences[0].dst_endpoint.ip", 2, "10.0.0.5"),
    ]
    assert f["unmapped"]["jenga"]["model"]["threshold"] == 0.8


def test_ocsf_a_counting_rule_is_a_rule_analytic_and_a_dns_name_an_observable():
    f = ocsf.convert(counting_alert())
    assert f["finding_info"]["analytic"] == {"name": "many_conns", "uid": "many_conns", "type_id": 1, "type": "Rule"}
    assert "confidence_score" not in f and (f["severity_id"], f["severity"]) == (3, "Medium")
    d = ocsf.convert(dns_alert())
    assert d["evidences"][0]["query"] == {"hostname": "xk2j9qpl0a.example.com"}
    assert {
        "name": "evidences[0].query.hostname",
        "type_id": 1,
        "type": "Hostname",
        "value": "xk2j9qpl0a.example.com",
    } in d["observables"]


# ---- CEF: escaping round-trips through a parser written from the specification


CEF_KEYS = {
    "rt",
    "externalId",
    "src",
    "dst",
    "shost",
    "dhost",
    "spt",
    "dpt",
    "proto",
    "act",
    "msg",
    "cat",
    "dvchost",
    "deviceExternalId",
    "c6a2",
    "c6a2Label",
    "c6a3",
    "c6a3Label",
    *(f"cs{i}" for i in range(1, 7)),
    *(f"cs{i}Label" for i in range(1, 7)),
    "cfp1",
    "cfp1Label",
    "cfp2",
    "cfp2Label",
}  # fmt: skip  (ArcSight CEF key names, "CEF Key Names for Event Producers")


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    """(the 7 header fields, the extension) of one CEF line, unescaped. Header: fields split at
    unescaped '|', where only '\\|' and '\\\\' are escapes; extension: key=value pairs separated by
    a space, a key being the word before an unescaped '=', values unescaping '\\=', '\\\\', '\\n',
    '\\r'. Any other escape, a raw line break or a missing piece raises ValueError."""
    if "\n" in line or "\r" in line:
        raise ValueError("a raw line break")
    header, i, field = [], 0, []
    while len(header) < 7:
        if i >= len(line):
            raise ValueError(f"only {len(header)} header fields")
        c = line[i]
        if c == "\\":
            nxt = line[i + 1 : i + 2]
            if nxt not in ("|", "\\"):
                raise ValueError(f"header escape \\{nxt}")
            field.append(nxt)
            i += 2
        elif c == "|":
            header.append("".join(field))
            field, i = [], i + 1
        else:
            field.append(c)
            i += 1
    ext = line[i:]
    # positions of unescaped '=' (a backslash run of even length before it)
    starts = []
    for m in re.finditer(r"(?:^| )([A-Za-z0-9_]+)=", ext):
        eq = m.end() - 1
        run = len(ext[:eq]) - len(ext[:eq].rstrip("\\"))
        if run % 2 == 0:
            starts.append((m.start(), m.group(1), m.end()))
    values: dict[str, str] = {}
    for n, (_, key, begin) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(ext)
        raw, out, j = ext[begin:end], [], 0
        while j < len(raw):
            if raw[j] == "\\":
                esc = raw[j + 1 : j + 2]
                if esc not in ("\\", "=", "n", "r"):
                    raise ValueError(f"extension escape \\{esc} in {key}")
                out.append({"\\": "\\", "=": "=", "n": "\n", "r": "\r"}[esc])
                j += 2
            elif raw[j] == "=":
                raise ValueError(f"an unescaped '=' in {key}")
            else:
                out.append(raw[j])
                j += 1
        if key in values:
            raise ValueError(f"{key} twice")
        values[key] = "".join(out)
    if ext and not starts:
        raise ValueError("an extension without key=value")
    return header, values


def test_cef_header_and_extension():
    alert = full_alert()
    header, ext = parse_cef(cef.convert(alert))
    assert header == ["CEF:0", "JengaAI", "jenga-edge", "0.1.0", "ssh_block", alert["output"], "8"]
    assert set(ext) <= CEF_KEYS
    assert ext["src"] == "203.0.113.7" and ext["dst"] == "10.0.0.5" and (ext["spt"], ext["dpt"]) == ("51234", "22")
    assert ext["rt"] == "1795626000123" and ext["externalId"] == alert["alert_id"]
    assert ext["act"] == "firewall:dry_run" and ext["msg"] == alert["output"] and ext["proto"] == "TCP"
    labelled = {ext[k + "Label"]: ext[k] for k in ext if k + "Label" in ext}
    assert labelled == {
        "modelBundleId": "5b" * 32,
        "modelGraphSha256": "9a" * 32,
        "modelTask": "threat",
        "attackIds": "TA0006,T1110,T1059,T1059.001",
        "modelScore": "0.97",
        "modelThreshold": "0.8",
    }
    for key in ext:  # every custom field carries its label
        if re.fullmatch(r"c(s|fp|6a)\d", key):
            assert key + "Label" in ext


@pytest.mark.parametrize("kind", list(ALERTS))
def test_cef_lines_parse_and_use_arcsight_keys(kind):
    header, ext = parse_cef(cef.convert(ALERTS[kind]))
    assert header[0] == "CEF:0" and 0 <= int(header[6]) <= 10
    assert set(ext) <= CEF_KEYS


def test_cef_escaping_round_trips_hostile_values():
    alert = make_alert(rule=HOSTILE, output=HOSTILE, src_ip="a=b\\", dest_ip="10.0.0.5 x=y", label=HOSTILE)
    line = cef.convert(alert)
    assert line.isprintable()  # no raw control, line break or bidi character
    header, ext = parse_cef(line)
    visible = HOSTILE.replace("\x00", "\\x00").replace("\x1b", "\\x1b").replace("\u202e", "\\u202e")
    # the header cannot hold a line break: it shows them as visible escapes, like the others
    assert header[4] == header[5] == visible.replace("\n", "\\n").replace("\r", "\\r")
    assert ext["msg"] == ext["cs5"] == visible  # line breaks come back as themselves
    assert ext["shost"] == "a=b\\" and ext["dhost"] == "10.0.0.5 x=y"
    assert line.startswith("CEF:0|JengaAI|jenga-edge|0.1.0|a=b c=d \\| e\\\\f")  # '=' left alone in the header


def test_the_cef_parser_can_fail():
    for bad in ("CEF:0|a|b|c|d|e", "CEF:0|a|b|c|d|e|5|msg=a=b", "CEF:0|a|b|c|d|e\\x|5|", "CEF:0|a|b|c|d|e|5|msg=a\\tb"):
        with pytest.raises(ValueError):
            parse_cef(bad)


def test_severity_scales_follow_the_priority():
    order = list(common.CEF_SEVERITY)  # emergency ... debug
    cef_scale = [common.CEF_SEVERITY[p] for p in order]
    ocsf_scale = [common.OCSF_SEVERITY[p][0] for p in order]
    assert cef_scale == sorted(cef_scale, reverse=True) and cef_scale[0] == 10 and cef_scale[-1] == 0
    assert ocsf_scale == sorted(ocsf_scale, reverse=True)
    enum = OCSF_DEF["class"]["attributes"]["severity_id"]["enum"]
    assert all(enum[str(i)] == caption for i, caption in common.OCSF_SEVERITY.values())
    assert parse_cef(cef.convert(make_alert(priority="bogus")))[0][6] == str(cef.DEFAULT_SEVERITY)


# ---- the sinks


def test_the_vendored_definitions_are_the_ones_the_readme_records():
    readme = (FIXTURES / "README.md").read_text()
    for name in ("ecs_fields.json", "ocsf_detection_finding.json"):
        sha = hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest()
        assert f"`{name}`: `{sha}`" in readme, name


def test_jsonl_writes_the_chosen_format_and_native_unchanged(tmp_path):
    alerts = [full_alert(), dns_alert()]
    native = JsonlSink(sinks_config({"a": {"type": "jsonl", "path": str(tmp_path / "n.jsonl")}})["a"])
    native.write_batch(alerts)
    native.close()
    assert (tmp_path / "n.jsonl").read_bytes() == b"".join(encode(a) + b"\n" for a in alerts)
    for fmt, check, spec in (("ecs", ecs_problems, None), ("ocsf", ocsf_problems, OCSF_DEF["class"])):
        path = tmp_path / f"{fmt}.jsonl"
        sink = JsonlSink(sinks_config({"a": {"type": "jsonl", "path": str(path), "format": fmt}})["a"])
        sink.write_batch(alerts)
        sink.write_outcomes([{"event_type": "action_result", "alert_id": "x", "result": "ok"}])
        sink.close()
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        assert len(lines) == 3
        for doc in lines[:2]:
            assert (check(doc) if spec is None else check(doc, spec)) == []
        assert lines[2]["event_type"] == "action_result"  # outcomes stay native


def test_stdout_writes_ecs_and_ocsf_lines_and_json_is_native():
    out: dict[str, str] = {}
    for fmt in ("json", "native", "ecs", "ocsf", "text"):
        buf = io.StringIO()
        StdoutSink(stdout.Config(format=fmt), buf).write_batch([full_alert()])  # type: ignore[arg-type]
        out[fmt] = buf.getvalue()
    assert out["json"] == out["native"] and json.loads(out["native"]) == full_alert()
    assert ecs_problems(json.loads(out["ecs"])) == []
    assert ocsf_problems(json.loads(out["ocsf"]), OCSF_DEF["class"]) == []
    assert out["text"].startswith("2026-11-25T17:00:00Z CRITICAL ssh_block")  # text is unaffected


SYSLOG_RE = re.compile(HEADER_RE.pattern.replace(r"(?P<msg>\{.*)$", r"(?P<msg>.*)$"), re.S)


def parse_syslog(data: bytes) -> dict[str, Any]:
    """test_sinks.parse_syslog for any MSG (a CEF line does not start with '{')."""
    m = SYSLOG_RE.match(data.decode("utf-8"))
    assert m, data
    out = m.groupdict()
    params = re.findall(r'([a-z_]+)="((?:[^"\\\]]|\\["\\\]])*)"', out["sd"])
    out["params"] = {k: re.sub(r"\\([\"\\\]])", r"\1", v) for k, v in params}
    return out


def test_syslog_sends_cef_and_ecs_in_rfc5424_messages():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    port = rx.getsockname()[1]
    got = {}
    try:
        for fmt in ("cef", "ecs", "ocsf"):
            # an ECS or OCSF document is larger than the native alert: past UDP's default 2048 bytes here
            cfg = syslog.Config(target=f"udp://127.0.0.1:{port}", format=fmt, max_message_bytes=8192)  # type: ignore[arg-type]
            sink = SyslogSink(cfg)
            assert sink.write_batch([full_alert()]) == 0
            got[fmt] = parse_syslog(rx.recv(65535))
            sink.close()
    finally:
        rx.close()
    msg = got["cef"]
    assert msg["pri"] == "130" and msg["msgid"] == "ssh_block" and msg["params"]["src_ip"] == "203.0.113.7"
    header, ext = parse_cef(msg["msg"])
    assert header[4] == "ssh_block" and ext["dst"] == "10.0.0.5"
    assert ecs_problems(json.loads(got["ecs"]["msg"])) == []
    assert ocsf_problems(json.loads(got["ocsf"]["msg"]), OCSF_DEF["class"]) == []


def test_a_cut_cef_message_never_ends_in_half_an_escape():
    line = cef.convert(make_alert(output="\\" * 3000))
    header, params, _ = syslog.syslog_parts(make_alert(), 16, render=cef.convert)
    for room in range(600, 640):
        data, cut = fit_message(header, params, line, room)
        assert cut and len(data) <= room
        body = data.decode().split("] ", 1)[1].split("...[truncated")[0]
        assert (len(body) - len(body.rstrip("\\"))) % 2 == 0


@pytest.mark.parametrize(
    "entry,where",
    [
        ({"type": "syslog", "format": "leef"}, r"siem\.format: expected one of 'native', 'ecs', 'ocsf', 'cef'"),
        (
            {"type": "jsonl", "path": "a.jsonl", "format": "cef"},
            r"siem\.format: expected one of 'native', 'ecs', 'ocsf',",
        ),
        (
            {"type": "stdout", "format": "cef"},
            r"siem\.format: expected one of 'json', 'text', 'native', 'ecs', 'ocsf',",
        ),
    ],
)
def test_a_format_a_sink_cannot_write_is_refused_at_load(entry, where):
    with pytest.raises(ConfigError, match=where):
        sinks_config({"siem": entry})


def test_ecs_leaves_an_ipv6_zone_in_the_address_only():
    doc = ecs.convert(ALERTS["ipv6"])
    assert doc["source"]["ip"] == "2001:db8::7"
    assert doc["destination"] == {"address": "fe80::1%eth0", "port": 22} and doc["related"]["ip"] == ["2001:db8::7"]


ODD_VALUES = [None, "", 0, -1, 2**70, 1.5, float("inf"), True, "x=y|z\\\n", [1, "a"], {"k": [None]}, "::1", "TA0001"]


def test_no_alert_value_breaks_a_converter_or_its_schema():
    """Every key of an alert set in turn to each odd value: each format converts without raising,
    ECS and OCSF stay valid and CEF parses."""
    keys = [*full_alert(), "label", "query", "src_port"]
    for key in keys:
        for value in ODD_VALUES:
            alert = {**full_alert(), key: value}
            assert ecs_problems(ecs.convert(alert)) == [], (key, value)
            assert ocsf_problems(ocsf.convert(alert), OCSF_DEF["class"]) == [], (key, value)
            parse_cef(cef.convert(alert))
            # what the formats write themselves is plain JSON (Jenga.* and unmapped pass the alert's own values on)
            typed = [
                {k: v for k, v in d.items() if k not in ("Jenga", "unmapped")}
                for d in (ecs.convert(alert), ocsf.convert(alert))
            ]
            json.dumps(typed, allow_nan=False, default=str)


def test_converters_are_loaded_only_when_asked_for():
    assert converter("native") is None
    assert converter("ecs") is ecs.convert and converter("cef") is cef.convert


def test_the_agent_writes_each_format_of_its_real_alerts(network_bundle, tmp_path):
    """`jenga-edge run` end to end: the same alerts in native, ECS and OCSF files, and as CEF over
    syslog; every converted one valid, one per native alert, the model reference the bundle's."""
    from tests.jenga_edge.test_agent import events, run_to_eof, write_config

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    sinks = {
        "jsonl": {"path": str(tmp_path / "alerts.jsonl")},
        "ecs": {"type": "jsonl", "path": str(tmp_path / "ecs.jsonl"), "format": "ecs"},
        "ocsf": {"type": "jsonl", "path": str(tmp_path / "ocsf.jsonl"), "format": "ocsf"},
        "siem": {"type": "syslog", "target": f"udp://127.0.0.1:{rx.getsockname()[1]}", "format": "cef"},
    }
    rules = [{"rule": "threat", "task": "threat", "priority": "error", "tags": ["T1046"], "actions": ["alert"]}]
    stdin = tmp_path / "in.jsonl"
    stdin.write_bytes(b"\n".join(events(300)) + b"\n")
    try:
        cfg = write_config(tmp_path, network_bundle[0], [{"type": "stdin"}], sinks=sinks, rules=rules)
        summary = run_to_eof(cfg, stdin)
        native = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
        cefs = [parse_syslog(rx.recv(65535))["msg"] for _ in native]
    finally:
        rx.close()
    assert summary["alerts"] == len(native) > 0
    docs = [json.loads(x) for x in (tmp_path / "ecs.jsonl").read_text().splitlines()]
    findings = [json.loads(x) for x in (tmp_path / "ocsf.jsonl").read_text().splitlines()]
    assert (
        [d["event"]["id"] for d in docs]
        == [f["finding_info"]["uid"] for f in findings]
        == [a["alert_id"] for a in native]
    )
    for alert, doc, finding, line in zip(native, docs, findings, cefs, strict=True):
        assert ecs_problems(doc) == [] and ocsf_problems(finding, OCSF_DEF["class"]) == []
        assert doc["threat"]["technique"]["id"] == ["T1046"]
        assert (
            doc["Jenga"]["model"]["graph_sha256"]
            == finding["finding_info"]["analytic"]["uid"]
            == alert["model"]["sha256"]
        )
        header, ext = parse_cef(line)
        assert (
            header[4] == "threat"
            and ext["externalId"] == alert["alert_id"]
            and ext["cs1"] == alert["model"]["bundle_id"]
        )
