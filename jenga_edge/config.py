"""The agent's config file (one per appliance, see firmware_configs/).

Every section is a typed Struct, checked when the file loads: a malformed
file names the key path and what was expected. `sources` is a list and
`sinks` and `actions` are mappings of name -> entry; an entry's `type` picks
its kind from a registry (sources/, sinks/, actions/), and a sink or action
named after its kind may leave the `type` out. docs/config-reference.md lists
every key (generated from these Structs).

Relative paths (bundle, file sources, sink and dead-letter files, spools)
resolve against the config file's directory, so a profile and its bundle can
travel together; appliance profiles use absolute paths.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import socket
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import msgspec

from . import actions, sinks, sources
from .actions.base import ActionConfig
from .actions.rate_limit import RateLimitConfig
from .contract.conditions import Condition, check_macros
from .contract.errors import ConfigError
from .contract.events import Derived, EventModel, Normalizer
from .contract.typed import Config, Invalid, apply_overrides, convert, doc, load_yaml
from .contract.windows import Window
from .framing import MAX_LINE_BYTES, MIN_LINE_BYTES
from .kinds import default_types
from .metrics.server import MetricsConfig
from .rules import RuleConfig
from .score import RuntimeConfig
from .sinks.base import SinkConfig
from .sinks.jsonl import Config as JsonlConfig
from .sources.base import DRAIN_S, SourceConfig
from .trust import TrustConfig, TrustStore, resolve_keys

RESERVED_ACTION = "alert"  # in a rule's actions: raise the alert (and nothing else)
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class AgentSection(Config, kw_only=True):
    bundle: Annotated[str, doc("the bundle directory jenga-export wrote (relative: to this file)")]
    id: Annotated[str, doc("names this agent in alerts (default: the host name)")] = msgspec.field(
        default_factory=socket.gethostname
    )
    tasks: Annotated[
        list[str] | None, doc("the bundle tasks to score (default: those the rules use; all, without rules)")
    ] = None
    trust: Annotated[TrustConfig, doc("bundle signatures: the trusted keys, and whether one must sign")] = (
        msgspec.field(default_factory=TrustConfig)
    )
    workers: Annotated[
        int,
        doc(
            "scoring processes (one per core); above 1, TCP/UDP listeners share their port (SO_REUSEPORT) and "
            "keyed state (windows, cooldowns) is sharded by shard_key (docs/agent.md, Scale-out); --workers "
            "overrides it; a change takes effect on restart",
            ge=1,
            le=256,
        ),
    ] = 1
    shard_key: Annotated[
        str | None,
        doc(
            "with workers > 1: the field whose value picks the worker an event is scored in; it must be in "
            "every window's key and every cooldown rule's key (default: the field they all share)"
        ),
    ] = None


class BatchingConfig(Config, kw_only=True):
    """Score up to max_batch events, or whatever arrived within max_wait_ms of
    the first one: throughput against latency, per appliance."""

    max_batch: Annotated[int, doc("events scored together at most", ge=1, le=65536)] = 256
    max_wait_ms: Annotated[
        float, doc("the longest an event waits for batch-mates (0: no batching delay)", ge=0.0, le=10_000.0)
    ] = 5.0
    queue_size: Annotated[int, doc("events read but not yet scored, at most (sources block, UDP drops)", ge=1)] = 8192
    # 1 MiB holds ~1,000 1-KB events, several ms of a busy stream; bigger boxes that
    # must ride out bursts raise it (see firmware_configs/).
    queue_bytes: Annotated[
        int,
        doc(
            "bytes of queued lines and of the partial lines sources hold, at most (0: no bound); a "
            "stream may hold its share of it, and one stream alone one line of max_line_bytes",
            ge=0,
        ),
    ] = 1024 * 1024
    max_line_bytes: Annotated[
        int, doc("a longer line is rejected (reason oversize), never split", ge=MIN_LINE_BYTES, le=MAX_LINE_BYTES)
    ] = 65536
    drain_s: Annotated[
        float,
        doc(
            "at SIGTERM, how long sources keep handing over what they already hold (partial lines, each "
            "connection's kernel receive buffer) to be scored; what is left then is counted as dropped, reason stop",
            ge=0.0,
            le=600.0,
        ),
    ] = DRAIN_S


class EventConfig(Config, kw_only=True):
    """How an event's fields are found."""

    mapping: Annotated[
        dict[str, str | list[str]],
        doc(
            "schema feature or key field -> dotted path in the event, e.g. bytes_sent: flow.bytes_toserver "
            "(on top of the bundle's event model; `x[]` is the first element of list x; a list of paths: the "
            "first that holds a value, e.g. domain: [dns.rrname, dns.queries[].rrname])"
        ),
    ] = {}
    where: Annotated[
        dict[str, Any],
        doc(
            "more conditions records must meet to be scored (others are counted as filtered), on top "
            "of the bundle's event model: field -> a value, a list, or operators as in rules"
        ),
    ] = {}
    normalize: Annotated[
        dict[str, Normalizer],
        doc("normalizers for fields the bundle's event model leaves alone (rule and key fields), e.g. proto"),
    ] = {}
    keys: Annotated[list[str], doc("fields copied to the top level of every alert")] = msgspec.field(
        default_factory=lambda: ["src_ip", "dest_ip", "dest_port"]
    )
    fields: Annotated[list[str], doc("more event fields, under the alert's `fields`")] = []
    min_present: Annotated[
        int,
        doc(
            "reject an event with fewer of the schema's features present (reason too_sparse, the missing ones "
            "named) rather than impute them all into a verdict; 0 turns the check off",
            ge=0,
        ),
    ] = 1

    time: Annotated[
        str | None,
        doc("the event-time field the agent's own windows run on (a bundle with windows names its own)"),
    ] = None
    windows: Annotated[
        dict[str, Window],
        doc(
            "window features for rules, on top of the bundle's (docs/rules.md): name -> {kind: count|distinct|"
            "sum|mean|std|rate|since_previous|damped, key: [...], ...}"
        ),
    ] = {}
    derive: Annotated[
        dict[str, Derived],
        doc(
            "fields computed from others for rules and alerts, on top of the bundle's (stateless): name -> "
            "{kind: ratio, num: [...], den: [...]} | {kind: sum, of: [...]} | {kind: duration, start, end}, "
            "e.g. query_bytes: {kind: ratio, num: [flow.bytes_toserver], den: [flow.pkts_toserver]}"
        ),
    ] = {}
    lag_s: Annotated[
        Annotated[float, msgspec.Meta(ge=0.0)] | None,
        doc("for the agent's own windows: how late an event may arrive (default 10; a bundle's windows fix it)"),
    ] = None
    max_keys: Annotated[
        Annotated[int, msgspec.Meta(ge=16)] | None,
        doc(
            "for the agent's own windows: live keys per key tuple, the least recently seen evicted "
            "(default 100,000; a bundle's windows fix it)"
        ),
    ] = None
    snapshot: Annotated[
        str,
        doc(
            "a file that keeps window state over a restart: written at SIGTERM, read at start "
            "(relative: to this file; empty: no snapshot)"
        ),
    ] = ""

    def __post_init__(self) -> None:
        # paths, conditions and window definitions, checked as a model of their own
        EventModel(
            where=self.where,
            mapping=self.mapping,
            normalize=self.normalize,
            time=self.time or ("time" if self.windows else None),
            windows=self.windows,
            derive=self.derive,
        )

    @property
    def limits(self) -> dict[str, Any]:
        return {"lag_s": self.lag_s, "max_keys": self.max_keys}

    def decoder_args(self) -> dict[str, Any]:
        """How this section reads events, as EventDecoder (and check_lines) take it: the agent
        and `jenga-edge check --config` read them alike."""
        return {
            "mapping": self.mapping,
            "min_present": self.min_present,
            "where": self.where,
            "normalize": self.normalize,
            "time": self.time,
            "windows": self.windows,
            "limits": self.limits,
            "derive_fields": self.derive,
        }


class SinkFailureConfig(Config, kw_only=True):
    """What the agent does when a file sink (jsonl, sqlite) or the dead-letter file cannot
    be written (a full disk, an I/O error): never nothing. The loss is always counted
    (jenga_sink_alerts_lost_total, jenga_dead_letters_lost_total) and logged."""

    policy: Annotated[
        Literal["stop", "spool"],
        doc(
            "stop: stop reading, score what was accepted, exit non-zero naming the sink and the error "
            "(/healthz fails meanwhile); spool: keep what could not be written in spool_path and go on "
            "(stop when the spool cannot take it either)"
        ),
    ] = "stop"
    spool_path: Annotated[
        str, doc("the spool file (JSON lines; relative: to this file); required by policy spool, on another disk")
    ] = ""
    max_spool_bytes: Annotated[int, doc("the spool's bound: past it, the agent stops", ge=1024)] = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.policy == "spool" and not self.spool_path:
            raise Invalid("spool_path", "policy spool needs a spool file, ideally on another disk")


class AgentConfig(Config, kw_only=True):
    """An agent config file."""

    agent: Annotated[AgentSection, doc("the bundle and this agent's name")]
    sources: Annotated[
        list[SourceConfig], doc("where events are read: a list of {type: stdin|file|tcp|udp|unix, ...}", min_length=1)
    ]
    runtime: Annotated[RuntimeConfig, doc("onnxruntime")] = msgspec.field(default_factory=RuntimeConfig)
    batching: Annotated[BatchingConfig, doc("micro-batches and the queue")] = msgspec.field(
        default_factory=BatchingConfig
    )
    event: Annotated[EventConfig, doc("where an event's fields are")] = msgspec.field(default_factory=EventConfig)
    rules: Annotated[list[RuleConfig], doc("sentinel rules (default: alert on every binary task)")] = []
    macros: Annotated[
        dict[str, dict[str, Any]],
        doc(
            "named conditions rules use with `macro: name` (Falco's macros), e.g. admin_ports: {dest_port: [22, 3389]}"
        ),
    ] = {}
    allowlist: Annotated[
        list[str], doc("addresses and networks no action ever touches (the rule's key, and what each action acts on)")
    ] = []
    actions: Annotated[
        dict[str, ActionConfig], doc("named actions rules can run: name -> {type: firewall|exec|webhook, ...}")
    ] = {}
    rate_limit: Annotated[RateLimitConfig, doc("the budget all actions share")] = msgspec.field(
        default_factory=RateLimitConfig
    )
    sinks: Annotated[
        dict[str, SinkConfig], doc("named alert destinations: name -> {type: jsonl|stdout|syslog|sqlite, ...}")
    ] = {}
    dead_letter: Annotated[JsonlConfig, doc("where rejected events go, with their reason")] = msgspec.field(
        default_factory=lambda: JsonlConfig(path="dead_letter.jsonl")
    )
    on_sink_failure: Annotated[
        SinkFailureConfig, doc("when a file sink or the dead-letter file cannot be written: stop or spool")
    ] = msgspec.field(default_factory=SinkFailureConfig)
    metrics: Annotated[MetricsConfig, doc("the Prometheus endpoint and the stats line")] = msgspec.field(
        default_factory=MetricsConfig
    )
    description: Annotated[str, doc("what this profile is for")] = ""


@functools.lru_cache(maxsize=8)
def _loadable(versions: tuple[int, int, int]) -> type[AgentConfig]:
    """AgentConfig with the kinds registered now in place of their base classes
    (each field keeps its bounds and help text)."""
    # The unions of the registered kinds are built at run time: the checker cannot use them as types.
    source, sink, action = sources.KINDS.union(), sinks.KINDS.union(), actions.KINDS.union()
    base = {f.name: f.type for f in msgspec.structs.fields(AgentConfig)}

    def kinds(name: str, container: Any) -> Any:
        """`container` with the base field's Annotated metadata (bounds, help)."""
        args = (container, *typing.get_args(base[name])[1:])
        return Annotated[args]

    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        ("sources", kinds("sources", list[source])),  # type: ignore[valid-type]
        ("sinks", kinds("sinks", dict[str, sink]), msgspec.field(default_factory=dict)),  # type: ignore[valid-type]
        ("actions", kinds("actions", dict[str, action]), msgspec.field(default_factory=dict)),  # type: ignore[valid-type]
    ]
    loadable = msgspec.defstruct("AgentConfig", fields, bases=(AgentConfig,), kw_only=True, forbid_unknown_fields=True)
    return cast(type[AgentConfig], loadable)  # a subclass: bases=(AgentConfig,)


def config_type() -> type[AgentConfig]:
    """The type a config file is read as (what docs/config-reference.md describes)."""
    return _loadable((sources.KINDS.version, sinks.KINDS.version, actions.KINDS.version))


def load_agent_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> AgentConfig:
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    raw = apply_overrides(copy.deepcopy(raw), overrides)
    return agent_config_from_dict(raw, str(path), Path(path).resolve().parent)


def agent_config_from_dict(raw: dict[str, Any], source: str = "config", base: Path | None = None) -> AgentConfig:
    """Check `raw` (a parsed config file); relative paths resolve against `base`."""
    _migration_hints(raw, source)
    raw = {
        **raw,
        "sinks": default_types(raw.get("sinks", {}), sinks.KINDS),
        "actions": default_types(raw.get("actions", {}), actions.KINDS),
    }
    cfg = convert(config_type(), raw, source=source)
    _cross_check(cfg, source)
    if base is not None:
        _resolve_paths(cfg, base)
    _one_writer_per_file(cfg, source)
    try:
        TrustStore.load(cfg.agent.trust)  # an unreadable key is said now, not at the first reload
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def _migration_hints(raw: dict[str, Any], source: str) -> None:
    """Say what changed in 0.2 where an 0.1 config would otherwise get a puzzling error."""
    acts = raw.get("actions")
    if isinstance(acts, dict) and "rate_limit" in acts:
        raise ConfigError(
            f"{source}: actions.rate_limit: moved to the top level in jenga 0.2: "
            "write `rate_limit: {...}` beside `actions:` (every other key of `actions` names an action)"
        )


def _resolve(base: Path, p: str) -> str:
    if p == "" or os.path.isabs(p):
        return p
    return str(base / p)


def _resolve_paths(cfg: AgentConfig, base: Path) -> None:
    """Relative paths in any section resolve against the config file's directory."""
    cfg.agent.bundle = _resolve(base, cfg.agent.bundle)
    resolve_keys(cfg.agent.trust, str(base))
    cfg.dead_letter.path = _resolve(base, cfg.dead_letter.path)
    cfg.event.snapshot = _resolve(base, cfg.event.snapshot)
    cfg.on_sink_failure.spool_path = _resolve(base, cfg.on_sink_failure.spool_path)
    for section in [*cfg.sources, *cfg.sinks.values(), *cfg.actions.values()]:
        for key in section.paths:
            setattr(section, key, _resolve(base, getattr(section, key)))
    queued: list[SinkConfig | ActionConfig] = [*cfg.sinks.values(), *cfg.actions.values()]
    for entry in queued:  # an output stage's spool file
        if entry.queue is not None:
            entry.queue.spool_path = _resolve(base, entry.queue.spool_path)


def _one_writer_per_file(cfg: AgentConfig, source: str) -> None:
    """Two sinks, spools or the dead-letter file writing one file would interleave and
    overwrite each other's lines (two webhooks would even send each other's alerts)."""
    seen: dict[str, str] = {os.path.abspath(cfg.dead_letter.path): "dead_letter.path"}
    spool = cfg.on_sink_failure.spool_path
    if spool:
        if os.path.abspath(spool) in seen:
            raise ConfigError(f"{source}: on_sink_failure.spool_path: {spool} is also the dead-letter file")
        seen[os.path.abspath(spool)] = "on_sink_failure.spool_path"
    named: list[tuple[str, str, SinkConfig | ActionConfig]] = [
        *(("sinks", name, e) for name, e in cfg.sinks.items()),
        *(("actions", name, e) for name, e in cfg.actions.items()),
    ]
    for section, name, entry in named:
        files = entry.written_files(name)
        if entry.queue is not None and entry.queue.spool_path:  # the output stage's spool
            files["queue.spool_path"] = entry.queue.spool_path
        for key, path in files.items():
            where, real = f"{section}.{name}.{key}", os.path.abspath(path)
            if real in seen:
                raise ConfigError(f"{source}: {where}: {path} is also written by {seen[real]}; give each its own file")
            seen[real] = where


def _cross_check(cfg: AgentConfig, source: str) -> None:
    try:
        check_macros(cfg.macros)
        for i, r in enumerate(cfg.rules):
            Condition(r.condition, cfg.macros, f"rules[{i}].condition")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    for section, names in (("actions", cfg.actions), ("sinks", cfg.sinks)):
        for name in names:
            if not _NAME.fullmatch(name):
                raise ConfigError(f"{source}: {section}: {name!r}: a name is 1-64 letters, digits, '_' or '-'")
    # The durable record is written on the scoring thread, before any action runs (agent.py).
    if cfg.dead_letter.queue is not None:
        raise ConfigError(f"{source}: dead_letter.queue: the dead-letter file is written before actions run; remove it")
    for name, sink in cfg.sinks.items():
        if sink.kind in ("jsonl", "sqlite") and sink.queue is not None:
            raise ConfigError(
                f"{source}: sinks.{name}.queue: a {sink.kind} sink is the durable record, written before "
                "actions run; remove queue"
            )
    if RESERVED_ACTION in cfg.actions:
        raise ConfigError(
            f"{source}: actions.{RESERVED_ACTION}: the name is reserved (a rule's `alert` "
            "raises the alert); give the action another name"
        )
    configured = {RESERVED_ACTION, *cfg.actions}
    for i, r in enumerate(cfg.rules):
        for j, a in enumerate(r.actions):
            if a not in configured:
                raise ConfigError(
                    f"{source}: rules[{i}].actions[{j}]: action {a!r} is not configured; "
                    f"configured: {', '.join(sorted(configured))} (add actions.{a})"
                )
    rule_names = [r.rule for r in cfg.rules]
    for i, n in enumerate(rule_names):
        if n in rule_names[:i]:
            raise ConfigError(f"{source}: rules[{i}].rule: rule name {n!r} is used more than once")
