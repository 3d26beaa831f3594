"""A new kind is one module plus one registry line: a toy source, sink and action, each
registered the way README.md shows, then loaded, validated and run by the real agent."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Annotated, Any

import pytest

from jenga_edge import actions, sinks, sources
from jenga_edge.actions.base import ActionConfig
from jenga_edge.agent import Agent
from jenga_edge.config import agent_config_from_dict, config_type
from jenga_edge.contract.errors import ConfigError
from jenga_edge.contract.typed import Invalid, doc
from jenga_edge.kinds import Kinds
from jenga_edge.sinks.base import SinkConfig
from jenga_edge.sources.base import Source, SourceConfig
from trainer.synthetic import generate

# --- three toy kinds, each what a module would hold ---------------------------------------------------


class ReplayConfig(SourceConfig, tag="replay", kw_only=True):
    """Replays the lines it is given, then ends (like stdin at EOF)."""

    lines: Annotated[list[str], doc("the events to replay", min_length=1)]


class ReplaySource(Source):
    config: ReplayConfig

    def _run(self) -> None:
        data = [line.encode() for line in self.config.lines]
        self._emit((data, None))
        self.eof = True


replay = types.SimpleNamespace(
    Config=ReplayConfig, build=lambda config, context: ReplaySource(config, context.queue, context.max_line_bytes)
)


class MemoryConfig(SinkConfig, tag="memory", kw_only=True):
    """Keeps alerts in a list (what a real sink would send somewhere)."""

    keep: Annotated[int, doc("the most alerts kept", ge=1)] = 1000


class MemorySink:
    def __init__(self, config: MemoryConfig):
        self.config, self.alerts, self.closed = config, [], False
        self.last_error: str | None = None

    def write_batch(self, alerts: list[dict[str, Any]]) -> int:
        kept = alerts[: self.config.keep - len(self.alerts)]
        self.alerts.extend(kept)
        if len(kept) < len(alerts):
            self.last_error = f"full ({self.config.keep} alerts)"
        return len(alerts) - len(kept)

    def close(self) -> None:
        self.closed = True


BUILT_SINKS: list[MemorySink] = []


def _build_sink(config: MemoryConfig, context: Any) -> MemorySink:
    BUILT_SINKS.append(MemorySink(config))
    return BUILT_SINKS[-1]


memory = types.SimpleNamespace(Config=MemoryConfig, build=_build_sink)


class TicketConfig(ActionConfig, kw_only=True, tag="ticket"):
    """Opens a ticket in a (pretend) tracker for the alert's source."""

    project: Annotated[str, doc("the tracker's project")]

    def __post_init__(self) -> None:
        if not self.project.isidentifier():
            raise Invalid("project", f"expected a project name, got {self.project!r}")


class TicketAction:
    type, slow = "ticket", False

    def __init__(self, config: TicketConfig):
        self.config, self.target, self.opened = config, f"tracker:{config.project}", []

    def addresses(self, alert: Mapping[str, Any]) -> list[Any]:
        return [alert.get("src_ip")]

    def run(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        self.opened.append(alert["src_ip"])
        return {"type": self.type, "target": self.target, "result": "ok", "reason": f"ticket {len(self.opened)}"}


ticket = types.SimpleNamespace(Config=TicketConfig, build=lambda config, context=None: TicketAction(config))


@pytest.fixture
def toy_kinds(monkeypatch):
    """The three registries with one more kind each (the registry line), for this test only."""
    monkeypatch.setattr(sources, "KINDS", Kinds("source", [*sources.KINDS, replay]))
    monkeypatch.setattr(sinks, "KINDS", Kinds("sink", [*sinks.KINDS, memory]))
    monkeypatch.setattr(actions, "KINDS", Kinds("action", [*actions.KINDS, ticket]))
    BUILT_SINKS.clear()


def _config(bundle: str, lines: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "agent": {"bundle": bundle},
        "sources": [{"type": "replay", "lines": lines}],
        "event": {"mapping": {"dest_ip": "dst_ip", "dest_port": "port"}},
        "rules": [
            {
                "rule": "t",
                "task": "threat",
                "threshold": 0.0,
                "key": "src_ip",
                "cooldown_s": 3600,
                "actions": ["alert", "open"],
            }
        ],
        "actions": {"open": {"type": "ticket", "project": "soc"}},
        "rate_limit": {"max_actions": 1000, "per_seconds": 1},
        "sinks": {"memory": {}, "archive": {"type": "memory", "keep": 3}},
        "dead_letter": {"path": "dead.jsonl"},
        "metrics": {"stats_interval_s": 0},
        **extra,
    }


def test_toy_kinds_are_validated_like_the_built_in_ones(toy_kinds):
    assert "replay" in sources.KINDS.names and "memory" in sinks.KINDS.names and "ticket" in actions.KINDS.names
    cfg = agent_config_from_dict(_config("/b", ["{}"]), "cfg")
    assert isinstance(cfg.sources[0], ReplayConfig) and isinstance(cfg.sinks["archive"], MemoryConfig)
    assert isinstance(config_type()(agent=cfg.agent, sources=cfg.sources), type(cfg))
    with pytest.raises(ConfigError, match=r"^cfg: sinks\.archive\.keep: expected a value >= 1, got 0$"):
        agent_config_from_dict(_config("/b", ["{}"], sinks={"archive": {"type": "memory", "keep": 0}}), "cfg")
    with pytest.raises(ConfigError, match=r"^cfg: actions\.open\.project: expected a project name, got 'no such'$"):
        agent_config_from_dict(_config("/b", ["{}"], actions={"open": {"type": "ticket", "project": "no such"}}), "cfg")
    with pytest.raises(ConfigError, match=r"^cfg: sources\[0\]\.lines: expected a non-empty value$"):
        agent_config_from_dict({**_config("/b", ["{}"]), "sources": [{"type": "replay", "lines": []}]}, "cfg")


def test_without_the_registry_line_the_kind_is_unknown():
    with pytest.raises(ConfigError, match=r"sources\[0\]\.type: expected one of 'stdin', .*got str 'replay'"):
        agent_config_from_dict(_config("/b", ["{}"]), "cfg")


def test_the_agent_runs_toy_kinds_end_to_end(toy_kinds, network_bundle, tmp_path):
    import json

    rows = generate("network", 200, seed=3)
    lines = [json.dumps(r) for r in rows] + ["not json"]
    cfg = agent_config_from_dict(_config(str(network_bundle[0]), lines), "cfg", base=tmp_path)
    agent = Agent(cfg, log=lambda s: None)
    summary = agent.run()
    assert summary["received"] == 201 and summary["rejected"] == 1 and summary["scored"] == 200
    everything, archive = BUILT_SINKS
    assert len(everything.alerts) == summary["alerts"] == len({r["src_ip"] for r in rows})  # one per key
    assert len(archive.alerts) == 3 and everything.closed and archive.closed
    outcomes = [a["actions"][0] for a in everything.alerts]
    assert all(o["type"] == "ticket" and o["name"] == "open" and o["result"] == "ok" for o in outcomes)
    snap = agent.metrics.snapshot()
    assert snap["received_by_source"] == {"replay": 201}
    assert snap["actions_by_type_result"] == {"ticket/ok": len(outcomes)}


def test_a_kind_may_not_redefine_a_setting_every_kind_shares():
    """`queue` is every sink's and action's output-queue setting: a kind that named its own
    field `queue` would be read as one (the agent crashed on 'str' has no 'spool_path')."""

    class Clashing(ActionConfig, kw_only=True, tag="clashing"):
        queue: Annotated[str, doc("the tracker's queue")]

    module = types.SimpleNamespace(Config=Clashing, build=lambda config, context: None)
    with pytest.raises(TypeError, match=r"^Clashing: queue is a setting every action kind has \(ActionConfig\)"):
        Kinds("action", [module])
