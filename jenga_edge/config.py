"""The agent's config file (one per appliance, see firmware_configs/).

Relative paths (bundle, sink and dead-letter files) resolve against the
config file's directory, so a profile and its bundle can travel together;
appliance profiles use absolute paths.
"""

from __future__ import annotations

import copy
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .actions import ExecConfig, FirewallConfig, RateLimitConfig, WebhookConfig
from .contract.errors import ConfigError
from .metrics import MetricsConfig
from .rules import RuleConfig
from .score import RuntimeConfig
from .sinks import JsonlSinkConfig, SinksConfig
from .sources import SourceConfig
from .contract.typed import apply_overrides, bounded, build, load_yaml


@dataclass
class AgentSection:
    bundle: str
    id: str = field(default_factory=socket.gethostname)
    tasks: Optional[list[str]] = None     # default: the tasks the rules use (all, without rules)


@dataclass
class BatchingConfig:
    """Score up to max_batch events, or whatever arrived within max_wait_ms of
    the first one: throughput against latency, per appliance."""

    max_batch: int = bounded(256, lo=1, hi=65536)
    max_wait_ms: float = bounded(5.0, lo=0.0, hi=10_000.0)
    queue_size: int = bounded(8192, lo=1)                    # events
    # Bytes of queued lines; 0 = no bound. 1 MiB holds ~1,000 1-KB events, several ms of
    # a busy stream; bigger boxes that must ride out bursts raise it (see firmware_configs/).
    queue_bytes: int = bounded(1024 * 1024, lo=0)
    max_line_bytes: int = bounded(65536, lo=64, hi=16 * 1024 * 1024)


@dataclass
class EventConfig:
    """mapping: schema feature or key field -> dotted path in the event (e.g.
    bytes_sent: flow.bytes_toserver). keys: fields copied to every alert's top
    level (src_ip, dest_ip, dest_port). fields: more event fields for alerts."""

    mapping: dict[str, str] = field(default_factory=dict)
    keys: list[str] = field(default_factory=lambda: ["src_ip", "dest_ip", "dest_port"])
    fields: list[str] = field(default_factory=list)


@dataclass
class ActionsConfig:
    firewall: Optional[FirewallConfig] = None
    webhook: Optional[WebhookConfig] = None
    exec: Optional[ExecConfig] = None
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)


@dataclass
class AgentConfig:
    agent: AgentSection
    sources: list[SourceConfig] = bounded(nonempty=True)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    event: EventConfig = field(default_factory=EventConfig)
    rules: list[RuleConfig] = field(default_factory=list)
    allowlist: list[str] = field(default_factory=list)
    actions: ActionsConfig = field(default_factory=ActionsConfig)
    sinks: SinksConfig = field(default_factory=SinksConfig)
    dead_letter: JsonlSinkConfig = field(default_factory=lambda: JsonlSinkConfig(path="dead_letter.jsonl"))
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    description: str = ""


def load_agent_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> AgentConfig:
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    raw = apply_overrides(copy.deepcopy(raw), overrides)
    cfg: AgentConfig = build(AgentConfig, raw, source=str(path))
    _resolve_paths(cfg, Path(path).resolve().parent)
    _cross_check(cfg, str(path))
    return cfg


def _resolve(base: Path, p: Optional[str]) -> Optional[str]:
    if p is None or p == "" or os.path.isabs(p):
        return p
    return str(base / p)


def _resolve_paths(cfg: AgentConfig, base: Path) -> None:
    cfg.agent.bundle = _resolve(base, cfg.agent.bundle)
    cfg.dead_letter.path = _resolve(base, cfg.dead_letter.path)
    for sub in ("jsonl", "sqlite"):
        s = getattr(cfg.sinks, sub, None)
        if s is not None and getattr(s, "path", None):
            s.path = _resolve(base, s.path)
    for s in cfg.sources:
        if getattr(s, "path", None) and s.type == "file":
            s.path = _resolve(base, s.path)
    if cfg.actions.webhook is not None and getattr(cfg.actions.webhook, "spool_dir", None):
        cfg.actions.webhook.spool_dir = _resolve(base, cfg.actions.webhook.spool_dir)


def _cross_check(cfg: AgentConfig, source: str) -> None:
    configured = {"alert"} | {n for n in ("firewall", "webhook", "exec") if getattr(cfg.actions, n) is not None}
    for i, r in enumerate(cfg.rules):
        for j, a in enumerate(r.actions):
            if a not in configured:
                raise ConfigError(f"{source}: rules[{i}].actions[{j}]: action {a!r} is not configured; "
                                  f"configured: {', '.join(sorted(configured))} (add actions.{a})")
    names = [r.rule for r in cfg.rules]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise ConfigError(f"{source}: rules[{i}].rule: rule name {n!r} is used more than once")
