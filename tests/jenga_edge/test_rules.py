"""Tests for jenga_edge/rules.py: thresholds, conditions, labels, severity, cooldown, allowlist."""

from __future__ import annotations

import re

import numpy as np
import pytest

from jenga_edge import rules as rules_mod
from jenga_edge.contract.bundle_format import TaskEntry, TensorSpec, input_specs
from jenga_edge.contract.errors import ConfigError
from jenga_edge.contract.schema import OOV_TOKEN, Feature, FeatureSchema
from jenga_edge.contract.tasks import task_kind
from jenga_edge.contract.typed import convert
from jenga_edge.decode import DecodedBatch
from jenga_edge.rules import RuleConfig, RuleEngine, SeverityBand, default_rules, render_output
from jenga_edge.score import Scores

SCHEMA = FeatureSchema((Feature("bytes", "numeric"), Feature("port", "categorical", categories=(OOV_TOKEN, "22"))))
CLASSES = ("none", "ddos", "port_scan", "exfiltration")


def task(name="threat", type="anomaly_detection", threshold=0.8, labels=("normal", "threat")) -> TaskEntry:
    outputs = [TensorSpec(**o) for o in task_kind(type).output_specs(len(labels))]
    return TaskEntry(
        name=name,
        type=type,
        mode="supervised",
        source="net",
        file=f"{name}.onnx",
        sha256="0" * 64,
        opset=18,
        size_bytes=0,
        inputs=input_specs(SCHEMA),
        outputs=outputs,
        labels=list(labels),
        threshold=threshold,
        schema=SCHEMA,
        schema_sha256=SCHEMA.sha256,
    )


TASKS = {"threat": task(), "attack_type": task("attack_type", "classification", None, CLASSES)}


def batch(**keys) -> DecodedBatch:
    n = len(next(iter(keys.values()))) if keys else 0
    return DecodedBatch(
        np.zeros((n, 1), np.float32), np.zeros((n, 1), np.int64), list(range(n)), {k: list(v) for k, v in keys.items()}
    )


def scores(threat=(), attack=(), labels=()) -> Scores:
    return Scores(
        {"threat": np.asarray(threat, np.float32), "attack_type": np.asarray(attack, np.float32)},
        {"attack_type": np.asarray(labels, np.int64)},
    )


def engine(*cfgs: RuleConfig, **kw) -> RuleEngine:
    return RuleEngine(list(cfgs), TASKS, **kw)


def rows(eng: RuleEngine, b: DecodedBatch, s: Scores) -> list[int]:
    return [h.row for h in eng.evaluate(b, s)]


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


# --- thresholds -----------------------------------------------------------------------------------


def test_bundle_threshold_uses_the_tasks_threshold():
    eng = engine(RuleConfig(rule="r", task="threat"))
    assert eng.rules[0].threshold == 0.8
    b = batch(src_ip=["a", "b", "c", "d"])
    assert rows(eng, b, scores([0.79, 0.8, 0.95, 0.1])) == [1, 2]


def test_a_numeric_threshold_overrides_the_bundle():
    eng = engine(RuleConfig(rule="r", task="threat", threshold=0.3))
    assert eng.rules[0].threshold == 0.3
    assert rows(eng, batch(x=[0, 0, 0]), scores([0.29, 0.3, 0.5])) == [1, 2]


def test_bundle_threshold_missing_on_a_binary_task_is_a_config_error():
    tasks = {"threat": task(threshold=None)}
    with pytest.raises(ConfigError, match=r"rules\[0\]\.threshold: the bundle has no threshold for task 'threat'"):
        RuleEngine([RuleConfig(rule="r", task="threat")], tasks)
    assert RuleEngine([RuleConfig(rule="r", task="threat", threshold=0.5)], tasks).rules[0].threshold == 0.5


def test_hit_carries_rule_row_score_priority():
    eng = engine(RuleConfig(rule="r", task="threat", priority="error"))
    (hit,) = eng.evaluate(batch(x=[0, 0]), scores([0.1, 0.9]))
    assert (hit.rule.cfg.rule, hit.row, hit.priority, hit.label) == ("r", 1, "error", None)
    assert hit.score == pytest.approx(0.9) and isinstance(hit.score, float)


def test_empty_batch_gives_no_hits():
    eng = engine(RuleConfig(rule="r", task="threat", condition={"dest_port": 22}, key="src_ip", cooldown_s=5))
    assert eng.evaluate(batch(dest_port=[], src_ip=[]), scores()) == []


def test_disabled_rules_are_not_evaluated():
    eng = engine(RuleConfig(rule="off", task="threat", enabled=False), RuleConfig(rule="on", task="threat"))
    assert [r.cfg.rule for r in eng.rules] == ["on"]


# --- conditions -----------------------------------------------------------------------------------


def cond_rows(condition: dict, **keys) -> list[int]:
    eng = engine(RuleConfig(rule="r", task="threat", threshold=0.0, condition=condition))
    n = len(next(iter(keys.values())))
    return rows(eng, batch(**keys), scores([0.9] * n))


PORTS = [22, "22", 22.0, 3389, "80", None, 443, True]


def test_list_condition_means_in():
    assert cond_rows({"dest_port": [22, 3389]}, dest_port=PORTS) == [0, 1, 2, 3]
    assert cond_rows({"dest_port": ["22"]}, dest_port=PORTS) == [0, 1, 2]


def test_scalar_condition_means_eq():
    assert cond_rows({"dest_port": 22}, dest_port=PORTS) == [0, 1, 2]
    assert cond_rows({"proto": "tcp"}, proto=["tcp", "udp", None, " tcp"]) == [0, 3]
    assert cond_rows({"flag": True}, flag=[True, False, "true", 1]) == [0, 2]


def test_operator_mappings():
    assert cond_rows({"dest_port": {"gte": 443, "lt": 3389}}, dest_port=PORTS) == [6]
    assert cond_rows({"dest_port": {"gte": 80, "lt": 3389}}, dest_port=PORTS) == [4, 6]
    assert cond_rows({"dest_port": {"gt": 22}}, dest_port=PORTS) == [3, 4, 6]
    assert cond_rows({"dest_port": {"lte": 22}}, dest_port=PORTS) == [0, 1, 2, 7]  # True counts as 1
    assert cond_rows({"dest_port": {"not_in": [22, 3389]}}, dest_port=PORTS) == [4, 5, 6, 7]
    assert cond_rows({"dest_port": {"ne": 22}}, dest_port=PORTS) == [3, 4, 5, 6, 7]
    assert cond_rows({"dest_port": {"eq": "3389"}}, dest_port=PORTS) == [3]
    assert cond_rows({"dest_port": {"in": [80, 443]}}, dest_port=PORTS) == [4, 6]


def test_none_values_only_pass_negative_operators():
    keys = {"v": [None, None]}
    for cond in ({"v": 1}, {"v": [1]}, {"v": {"gte": 0}}, {"v": {"lt": 1e9}}, {"v": {"eq": None}}):
        assert cond_rows(cond, **keys) == [], cond
    for cond in ({"v": {"ne": 1}}, {"v": {"not_in": [1]}}):
        assert cond_rows(cond, **keys) == [0, 1], cond


def test_numeric_operators_on_non_numbers_do_not_match():
    assert cond_rows({"v": {"gte": 0}}, v=["abc", "12", {"x": 1}, 5]) == [1, 3]


def test_several_fields_must_all_match():
    cond = {"dest_port": [22], "proto": "tcp"}
    assert cond_rows(cond, dest_port=[22, 22, 80], proto=["tcp", "udp", "tcp"]) == [0]


def test_unknown_operator_is_a_config_error_naming_the_path():
    with pytest.raises(
        ConfigError,
        match=r"rules\[0\]\.condition\.dest_port: unknown operator 'greater'.*"
        r"expected one of: eq, ne, in, not_in, gt, gte, lt, lte",
    ):
        engine(RuleConfig(rule="r", task="threat", condition={"dest_port": {"greater": 1}}))
    with pytest.raises(ConfigError, match=r"rules\[1\]\.condition\.proto: unknown operator 'like'"):
        engine(
            RuleConfig(rule="a", task="threat"),
            RuleConfig(rule="b", task="threat", condition={"proto": {"eq": "tcp", "like": "t%"}}),
        )


def test_condition_fields_and_key_and_output_names_are_rule_fields():
    eng = engine(
        RuleConfig(
            rule="r",
            task="threat",
            condition={"dest_port": 22},
            key="src_ip",
            output="%src_ip -> %dest_ip:%dest_port (%score)",
        ),
        RuleConfig(rule="s", task="threat", condition={"proto": "udp"}),
    )
    assert eng.rules[0].fields == {"dest_port", "src_ip", "dest_ip", "score"}
    assert eng.fields == {"dest_port", "src_ip", "dest_ip", "score", "proto"}


# --- classification rules --------------------------------------------------------------------------


def test_classification_rule_alerts_only_for_listed_labels():
    eng = engine(RuleConfig(rule="exfil", task="attack_type", labels=["exfiltration", "ddos"], threshold=0.7))
    assert eng.rules[0].label_ids == [3, 1]
    s = scores(attack=[0.9, 0.9, 0.6, 0.95, 0.99], labels=[3, 1, 3, 2, 0])
    hits = eng.evaluate(batch(x=[0] * 5), s)
    assert [(h.row, h.label) for h in hits] == [(0, "exfiltration"), (1, "ddos")]


def test_a_classification_rule_without_labels_is_refused():
    # It could never alert: a class task alerts only on the classes a rule lists.
    with pytest.raises(
        ConfigError,
        match=r"^rules\[0\]\.labels: required for a classification task: the "
        r"predicted classes that alert \(the classes of 'attack_type': "
        r"none, ddos, port_scan, exfiltration\)$",
    ):
        engine(RuleConfig(rule="any", task="attack_type", threshold=0.0))


def test_a_cooldown_needs_a_key():
    with pytest.raises(
        ConfigError,
        match=r"^cfg: rules\[0\]\.cooldown_s: needs key: the event field whose "
        r"value is kept quiet",
    ):
        convert(dict[str, list[RuleConfig]], {"rules": [{"rule": "r", "task": "t", "cooldown_s": 5}]}, source="cfg")
    assert convert(RuleConfig, {"rule": "r", "task": "t", "cooldown_s": 5, "key": "src_ip"}).cooldown_s == 5


def test_classification_bundle_threshold_defaults_to_half():
    eng = engine(RuleConfig(rule="c", task="attack_type", labels=["ddos"]))
    assert eng.rules[0].threshold == 0.5
    assert rows(eng, batch(x=[0, 0]), scores(attack=[0.49, 0.5], labels=[1, 1])) == [1]


def test_labels_on_a_binary_task_is_a_config_error():
    with pytest.raises(
        ConfigError,
        match=r"rules\[0\]\.labels: only for tasks that name a class; 'threat' is anomaly_detection \(binary",
    ):
        engine(RuleConfig(rule="r", task="threat", labels=["malicious"]))


def test_an_unknown_label_is_a_config_error_listing_the_classes():
    with pytest.raises(
        ConfigError,
        match=r"rules\[0\]\.labels: \['exfil'\] are not classes of 'attack_type' "
        r"\(none, ddos, port_scan, exfiltration\)",
    ):
        engine(RuleConfig(rule="r", task="attack_type", labels=["ddos", "exfil"]))


# --- severity bands ---------------------------------------------------------------------------------


def test_severity_picks_the_highest_band_reached():
    cfg = RuleConfig(
        rule="r",
        task="threat",
        priority="warning",
        severity=[
            SeverityBand(min_score=0.9, priority="error"),
            SeverityBand(min_score=0.99, priority="critical"),
            SeverityBand(min_score=0.95, priority="alert"),
        ],
    )
    eng = engine(cfg)
    hits = eng.evaluate(batch(x=[0] * 5), scores([0.8, 0.91, 0.96, 0.995, 0.5]))
    assert [(h.row, h.priority) for h in hits] == [(0, "warning"), (1, "error"), (2, "alert"), (3, "critical")]
    assert eng.rules[0].priority_for(1.0) == "critical" and eng.rules[0].priority_for(0.0) == "warning"


def test_severity_loaded_from_plain_data():
    cfg = convert(
        RuleConfig, {"rule": "r", "task": "threat", "severity": [{"min_score": 0.99, "priority": "critical"}]}
    )
    assert cfg.severity == [SeverityBand(min_score=0.99, priority="critical")]
    with pytest.raises(ConfigError, match=r"severity\[0\]\.min_score: expected a value <= 1"):
        convert(RuleConfig, {"rule": "r", "task": "threat", "severity": [{"min_score": 2}]})


# --- cooldown ---------------------------------------------------------------------------------------


def test_cooldown_per_key_with_an_injected_clock():
    clock = FakeClock()
    eng = engine(RuleConfig(rule="r", task="threat", key="src_ip", cooldown_s=60), clock=clock)
    b = batch(src_ip=["1.1.1.1", "1.1.1.1", "2.2.2.2"])
    s = scores([0.9, 0.9, 0.9])
    assert rows(eng, b, s) == [0, 2]  # same key twice in one batch: once
    assert eng.suppressed == 1
    clock.t += 59.9
    assert rows(eng, b, s) == []  # within the cooldown
    assert eng.suppressed == 4
    clock.t += 0.1
    assert rows(eng, b, s) == [0, 2]  # cooldown elapsed (>= cooldown_s)
    assert eng.suppressed == 5


def test_cooldown_keys_are_independent_and_counted_from_each_keys_last_alert():
    clock = FakeClock(0.0)
    eng = engine(RuleConfig(rule="r", task="threat", key="src_ip", cooldown_s=10), clock=clock)
    assert rows(eng, batch(src_ip=["a"]), scores([0.9])) == [0]
    clock.t = 5
    assert rows(eng, batch(src_ip=["b", "a"]), scores([0.9, 0.9])) == [0]
    clock.t = 11
    assert rows(eng, batch(src_ip=["b", "a"]), scores([0.9, 0.9])) == [1]  # b alerted at 5, a at 0
    clock.t = 15
    assert rows(eng, batch(src_ip=["b", "a"]), scores([0.9, 0.9])) == [0]


def test_cooldown_key_values_compare_as_categories():
    clock = FakeClock()
    eng = engine(RuleConfig(rule="r", task="threat", key="dest_port", cooldown_s=10), clock=clock)
    assert rows(eng, batch(dest_port=[22, "22", 22.0, None, None]), scores([0.9] * 5)) == [0, 3]
    assert eng.suppressed == 3


def test_cooldown_is_per_rule():
    clock = FakeClock()
    eng = engine(
        RuleConfig(rule="a", task="threat", key="src_ip", cooldown_s=10),
        RuleConfig(rule="b", task="threat", key="src_ip", cooldown_s=10),
        clock=clock,
    )
    hits = eng.evaluate(batch(src_ip=["x", "x"]), scores([0.9, 0.9]))
    assert [(h.rule.cfg.rule, h.row) for h in hits] == [("a", 0), ("b", 0)]


def test_no_cooldown_never_suppresses():
    # (A cooldown without a key is refused when the config loads: test_a_cooldown_needs_a_key.)
    clock = FakeClock()
    for cfg in (
        RuleConfig(rule="r", task="threat"),
        RuleConfig(rule="r", task="threat", key="src_ip", cooldown_s=0),
    ):
        eng = engine(cfg, clock=clock)
        assert rows(eng, batch(src_ip=["a", "a"]), scores([0.9, 0.9])) == [0, 1]
        assert rows(eng, batch(src_ip=["a", "a"]), scores([0.9, 0.9])) == [0, 1]
        assert eng.suppressed == 0


def test_rows_below_threshold_do_not_start_a_cooldown():
    clock = FakeClock()
    eng = engine(RuleConfig(rule="r", task="threat", key="src_ip", cooldown_s=60), clock=clock)
    assert rows(eng, batch(src_ip=["a"]), scores([0.1])) == []
    assert rows(eng, batch(src_ip=["a"]), scores([0.9])) == [0]
    assert eng.suppressed == 0


def test_cooldown_map_is_bounded(monkeypatch):
    monkeypatch.setattr(rules_mod, "COOLDOWN_KEYS_MAX", 3)
    clock = FakeClock()
    eng = engine(RuleConfig(rule="r", task="threat", key="src_ip", cooldown_s=60), clock=clock)
    keys = [f"10.0.0.{i}" for i in range(10)]
    assert rows(eng, batch(src_ip=keys), scores([0.9] * 10)) == list(range(10))
    rule = eng.rules[0]
    assert len(rule._last) == 3
    assert list(rule._last) == keys[-3:]  # the oldest are forgotten first
    # the newest keys are still cooling down; a forgotten one may alert again
    assert rows(eng, batch(src_ip=[keys[9], keys[0]]), scores([0.9, 0.9])) == [1]
    assert len(rule._last) == 3
    # within one batch too: a key pushed out by newer ones may alert again in the same batch
    fresh = [f"10.1.0.{i}" for i in range(4)]
    assert rows(eng, batch(src_ip=[*fresh, fresh[0]]), scores([0.9] * 5)) == [0, 1, 2, 3, 4]
    assert list(rule._last) == [*fresh[2:], fresh[0]]


# --- allowlist -------------------------------------------------------------------------------------


def test_allowlist_matches_addresses_and_networks_v4_and_v6():
    eng = engine(allowlist=["192.168.1.1", "10.0.0.0/8", "2001:db8::/32", "172.16.5.9/16", "::1"])
    for ip in ("192.168.1.1", "10.255.0.3", "2001:db8:0:1::7", "172.16.200.1", "::1"):
        assert eng.allowlisted(ip), ip
    for ip in ("192.168.1.2", "11.0.0.1", "2001:db9::1", "172.17.0.1", "::2", "fe80::1"):
        assert not eng.allowlisted(ip), ip


@pytest.mark.parametrize("value", ["not-an-ip", "", None, 22, 3.5, "10.0.0.1/8", " 10.0.0.1", "host.example"])
def test_allowlisted_is_false_for_non_ip_values(value):
    assert engine(allowlist=["0.0.0.0/0", "::/0"]).allowlisted(value) is False


def test_empty_allowlist_allows_nothing():
    assert engine().allowlisted("10.0.0.1") is False


@pytest.mark.parametrize("entry", ["nope", "10.0.0.0/33", "300.1.1.1", "", "2001:db8::/129"])
def test_a_bad_allowlist_entry_is_a_config_error(entry):
    with pytest.raises(ConfigError, match=re.escape(f"allowlist[1]: {entry!r} is not an IP address or network")):
        engine(allowlist=["10.0.0.0/8", entry])


# --- output ---------------------------------------------------------------------------------------


def test_render_output_substitutes_fields():
    values = {"src_ip": "10.0.0.1", "dest_port": 22, "score": 0.98765, "proto": None, "ok": True}
    assert (
        render_output("threat from %src_ip:%dest_port (score %score)", values)
        == "threat from 10.0.0.1:22 (score 0.988)"
    )
    assert render_output("%proto %ok %missing!", values) == "<proto?> True <missing?>!"  # a field the event lacks
    assert render_output("100% sure, %score%", values) == "100% sure, 0.988%"
    assert render_output("%src_ipx %src_ip", values) == "<src_ipx?> 10.0.0.1"
    assert render_output("", values) == ""
    assert render_output("no fields", {}) == "no fields"


# --- engine construction ----------------------------------------------------------------------------


def test_default_rules_one_per_binary_task():
    tasks = {**TASKS, "novelty": task("novelty", threshold=0.6)}
    got = default_rules(tasks)
    assert [(r.rule, r.task, r.threshold, r.priority) for r in got] == [
        ("threat_threshold", "threat", "bundle", "warning"),
        ("novelty_threshold", "novelty", "bundle", "warning"),
    ]
    eng = RuleEngine(got, tasks)
    assert [r.threshold for r in eng.rules] == [0.8, 0.6]
    assert default_rules({"attack_type": TASKS["attack_type"]}) == []


def test_an_unknown_task_is_a_config_error():
    with pytest.raises(
        ConfigError,
        match=r"rules\[1\]\.task: 'nope' is not a task this agent runs "
        r"\(threat, attack_type\)",
    ):
        engine(RuleConfig(rule="a", task="threat"), RuleConfig(rule="b", task="nope"))


def test_rule_config_from_plain_data_names_bad_keys():
    with pytest.raises(ConfigError, match=r"^cfg: rules\[0\]\.priority: expected one of .*did you mean 'critical'"):
        convert(
            dict[str, list[RuleConfig]],
            {"rules": [{"rule": "r", "task": "threat", "priority": "critcal"}]},
            source="cfg",
        )
    with pytest.raises(ConfigError, match=r"cooldown_s: expected a value >= 0"):
        convert(RuleConfig, {"rule": "r", "task": "threat", "cooldown_s": -1})


# --- known bugs ------------------------------------------------------------------------------------


def test_in_with_a_scalar_argument_is_rejected_at_load_or_works():
    try:
        eng = engine(RuleConfig(rule="r", task="threat", condition={"dest_port": {"in": 22}}))
    except ConfigError as exc:
        assert "rules[0].condition.dest_port" in str(exc)
        return
    assert rows(eng, batch(dest_port=[22, 80]), scores([0.9, 0.9])) == [0]


def test_vectorised_priorities_match_priority_for_at_band_edges():
    eng = engine(
        RuleConfig(
            rule="r",
            task="threat",
            priority="notice",
            severity=[
                SeverityBand(min_score=0.9, priority="critical"),
                SeverityBand(min_score=0.95, priority="emergency"),
                SeverityBand(min_score=0.8, priority="warning"),
            ],
        )
    )
    rule = eng.rules[0]
    edges = [0.8, 0.9, 0.95, 0.1, 1.0]
    values = np.array(
        edges
        + [np.nextafter(np.float32(e), np.float32(0)) for e in edges]
        + list(np.random.default_rng(0).random(200)),
        dtype=np.float32,
    )
    assert rule.priorities(values) == [rule.priority_for(float(v)) for v in values]
    assert rule.priorities(np.array([0.95, 0.9, 0.8, 0.5], dtype=np.float32)) == [
        "emergency",
        "critical",
        "warning",
        "notice",
    ]
