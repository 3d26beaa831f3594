"""The agent: sources -> queue -> micro-batches -> decode -> score -> rules ->
sinks -> actions, with every event accounted for.

Threads: each source reads in its own thread into one bounded queue; the main
thread does all scoring, rule evaluation and file-sink writes, so no lock
guards the pipeline. Whatever can block (a syslog collector, a webhook, a live
exec, nft or ipset command) runs behind the asynchronous output stage
(output_stage.py): a bounded queue and a worker each, with a policy when full,
so a dead receiver or a hung command never stalls scoring. Signals only set
flags that the loop reads between batches: SIGHUP reloads (config + bundle,
verified before the swap; on any failure the old pipeline keeps serving);
SIGTERM/SIGINT stop the sources, which
hand over what they already hold (kernel buffers included) within
batching.drain_s while the loop keeps scoring, then score everything accepted,
flush the sinks and exit 0.

Durability order, per batch:

1. decode, score, rules; every alert gets a stable ``alert_id`` (this run's id
   and a sequence number). Allowlist and rate-limit checks run here, on the
   scoring thread; a dry-run action (which runs nothing) records its argv here.
2. the alerts go to every sink. File sinks (jsonl, sqlite) write and fsync (the
   fsync overlaps the next batch, sinks/fsync.py, except in a batch with a live
   action, which waits for it); a write that fails is cut back to its last whole
   line (sinks/lines.py) and the loss is known.
3. rejected events go to the dead-letter file.
4. only then do actions run, and only for alerts a file sink (or the
   `on_sink_failure` spool) recorded: an alert no record holds gets no action
   (outcome ``skipped``, counted). With no file sink configured, nothing durable
   holds an alert: actions run once the batch was handed to every sink, which
   for a queued sink (syslog) means queued, not yet delivered. A blocking action
   is queued (``queued`` in the alert) and its final outcome is recorded
   afterwards as an ``action_result`` record keyed by ``alert_id`` (a JSONL
   line; a row of sqlite's ``action_results``, merged back by `jenga-edge
   alerts`); a command still running when the stop's drain_s runs out is
   recorded as ``in_flight_at_stop``.

A sink failure is not an event rejection: the batch's events were scored and
are counted as such; the sink's lost alerts are counted per sink
(jenga_sink_alerts_lost_total). When a file sink or the dead-letter file cannot
be written, `on_sink_failure` decides: ``stop`` (default: stop reading, score
what was accepted, exit non-zero naming the sink and the error; /healthz fails
from the first failure) or ``spool`` (keep the records in a bounded spool file
and go on; stop when the spool cannot take them either). Never silent.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import __version__, window_snapshots
from .actions import Action, BackgroundAction, build_actions, close_actions, firewall, unwrap
from .actions.background import OnResult
from .actions.base import end_running_commands
from .actions.rate_limit import RateLimiter
from .bundle import Bundle, verify_bundle
from .config import RESERVED_ACTION, AgentConfig, load_agent_config
from .contract.errors import ActionError, ConfigError, JengaError
from .contract.text import escape_text
from .contract.window_state import WindowEngine
from .decode import DecodedBatch, EventDecoder, Reject
from .event_queue import Batch, EventQueue
from .failures import FailureLog
from .metrics.agent import AgentMetrics
from .metrics.registry import Counter as MetricCounter
from .metrics.server import MetricsServer
from .output_stage import OutputStage
from .rules import Hit, Rule, RuleEngine, default_rules, render_output
from .score import Scorer
from .sinks import QueuedSink, Sink, build_sinks
from .sinks.base import FileSink
from .sinks.jsonl import JsonlSink
from .sinks.lines import LineSpool
from .sources import SourceContext, build_source
from .systemd import Notifier
from .timestamps import iso_utc
from .trust import TrustStore

_EVENT_LOG = {
    "rejected": "refused a connection: max_connections open, none idle to make room for it",
    "evicted": "closed the connection idle longest to admit a new one (max_connections or its address's "
    "max_connections_per_peer open)",
    "idle_closed": "closed a connection idle past idle_timeout_s",
    "peer_limit": "refused a connection: its address holds max_connections_per_peer, none idle to make room",
}
DEAD_LETTER_LINE_MAX = 4096
IDLE_POLL_S = 0.1
WAIT_GRACE_S = 2.0  # a source waiting longer is reported (a log rotation's gap is shorter)
WAIT_CHECK_S = 0.5  # how often the loop looks at its sources' waiting state


@dataclass
class Pipeline:
    """Everything a reload replaces, built and verified before it is swapped in."""

    cfg: AgentConfig
    bundle: Bundle
    scorer: Scorer
    decoder: EventDecoder
    rules: RuleEngine
    actions: dict[str, Action]
    limiter: RateLimiter
    model_refs: dict[str, dict[str, str]]  # task -> {"bundle_id", "file", "sha256"} of the graph that scores it


def build_pipeline(
    cfg: AgentConfig,
    source: str = "config",
    on_result: OnResult | None = None,
) -> Pipeline:
    """Verify the bundle and build everything that scores and acts. `source` (the config
    file) prefixes the errors only the bundle can reveal (a rule's task, its labels);
    `on_result(name, alert, outcome)` gets the final outcome of actions that run on a
    worker (webhooks, live exec and firewall commands)."""
    bundle = verify_bundle(cfg.agent.bundle, TrustStore.load(cfg.agent.trust))
    try:
        where = "agent.tasks" if cfg.agent.tasks else "rules[].task"
        scorer = Scorer(bundle, cfg.agent.tasks or _rule_tasks(cfg, bundle), cfg.runtime, where)
        tasks = {t: bundle.tasks[t] for t in scorer.tasks}
        rules = RuleEngine(cfg.rules or default_rules(tasks), tasks, cfg.allowlist, macros=cfg.macros)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    # Raw values the alerts and rule conditions read, besides the model's inputs.
    wanted = list(dict.fromkeys([*cfg.event.keys, *cfg.event.fields, *sorted(rules.fields)]))
    try:
        decoder = EventDecoder(scorer.schema, key_fields=wanted, **cfg.event.decoder_args())
        # warm-up spans need the windows: the bundle's and the agent's (auto: the longest a rule reads)
        features = {f.name for f in scorer.schema.features}
        rules.resolve_warmup(decoder.model.windows, features, decoder.windows is not None)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        for name, action_cfg in cfg.actions.items():
            if isinstance(action_cfg, firewall.Config):
                firewall.check_live(name, action_cfg)
    except ActionError as exc:
        raise ActionError(f"{source}: {exc}") from None
    actions = build_actions(cfg.actions, on_result)
    limiter = RateLimiter(cfg.rate_limit.max_actions, cfg.rate_limit.per_seconds)
    bundle.release_graphs()  # the sessions are built: the verified bytes are no longer needed
    refs = {t: {"bundle_id": bundle.bundle_id, **scorer.graph_refs[t]} for t in scorer.tasks}  # the graph that scores
    return Pipeline(cfg, bundle, scorer, decoder, rules, actions, limiter, refs)


def ensure_firewalls(pipe: Pipeline, source: str) -> None:
    """Firewall actions with `ensure: true` create their sets and rules (idempotent) before
    the pipeline serves; on failure the pipeline's workers are stopped and the error raised."""
    try:
        for name, action in pipe.actions.items():
            inner = unwrap(action)
            if isinstance(inner, firewall.FirewallAction):
                firewall.ensure(name, inner)
    except ActionError as exc:
        close_actions(pipe.actions)
        raise ActionError(f"{source}: {exc}") from None


# Sections a reload does not rebuild: they hold open sockets, files and threads.
RESTART_ONLY = ("sources", "batching", "sinks", "dead_letter", "on_sink_failure", "metrics")


def _carry_state(old: Pipeline, new: Pipeline) -> None:
    """Cooldowns (per rule name), the action budget and the matches min_matches counts (if
    unchanged) survive a reload, so a logrotate SIGHUP does not re-alert and re-block every
    key at once, nor forget a host's first match."""
    previous = {r.cfg.rule: r for r in old.rules.rules}
    same_clock = (old.decoder.windows is None) == (new.decoder.windows is None)  # event time or the agent's
    for rule in new.rules.rules:
        before = previous.get(rule.cfg.rule)
        if before is not None:
            rule._last = before._last
            rule._recent = before._recent
            if (rule.cfg.min_matches, rule.cfg.key) == (before.cfg.min_matches, before.cfg.key) and same_clock:
                rule._matches = before._matches
    if old.cfg.rate_limit == new.cfg.rate_limit:
        new.limiter = old.limiter
    old_w, new_w = old.decoder.windows, new.decoder.windows
    if old_w is not None and new_w is not None:
        new_w.carry_from(old_w)  # only when the window definitions are unchanged
        if new_w.definition == old_w.definition:  # warm windows stay warm: the warm-up goes on, or stays over
            warm = old.rules.warmup
            if warm.start is None and new_w.clock > warm.restored:
                warm.warm = True  # the windows ran (past a restored clock) with no warm-up to track them: not cold
            new.rules.warmup = warm


def _rule_tasks(cfg: AgentConfig, bundle: Bundle) -> list[str] | None:
    """Without agent.tasks, score the tasks the rules use (all tasks if no rules):
    a task no rule reads would cost scoring time for nothing."""
    for i, r in enumerate(cfg.rules):
        if r.task is not None and r.task not in bundle.tasks:
            raise ConfigError(
                f"rules[{i}].task: {r.task!r} is not a task of bundle {bundle.bundle_id} "
                f"(it has: {', '.join(bundle.tasks)})"
            )
    return list(dict.fromkeys(r.task for r in cfg.rules if r.task is not None)) or None


class Agent:
    # Set by a worker of several (worker_agent.py): listeners share their port (SO_REUSEPORT);
    # only the first worker creates firewall sets (ensure), so that workers never race.
    reuse_port = False
    creates_firewalls = True

    def __init__(
        self,
        cfg: AgentConfig,
        config_path: str | None = None,
        overrides: list[str] | tuple[str, ...] = (),
        log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
        service: Notifier | None = None,  # systemd's notify socket (systemd.py); None: not a service
    ):
        self.config_path, self.overrides = config_path, overrides
        # Log lines quote what peers and events sent (errors, reasons): escaped, one line each.
        self.log: Callable[[str], None] = lambda s: log(escape_text(s))
        self.log_error: Callable[[str], None] = lambda s: getattr(log, "error", log)(escape_text(s))  # journal <3>
        self.started = time.monotonic()
        self.metrics = AgentMetrics()
        self.failures = FailureLog(getattr(log, "warning", log))  # escapes its own lines; a journal's <4>
        self.service = service or Notifier()
        self.service.attach(self.metrics.systemd_notify_failures.inc, self.failures.warn)
        self._results: deque[tuple[str, dict[str, Any], dict[str, Any]]] = deque()  # from action workers
        self._results_lock = threading.Lock()
        self._results_closed = False  # the sinks are closed: a late outcome is logged, not recorded
        self._retired: list[tuple[threading.Thread, list[OutputStage[Any]]]] = []  # reloaded actions draining
        self.run_id = os.urandom(4).hex()  # alert ids: unique per run, ordered within it
        self._alert_seq = 0
        self.fatal: str | None = None  # why the agent stops (on_sink_failure: stop)
        self.pipe = build_pipeline(cfg, config_path or "config", self._action_result)
        self.check_pipeline(self.pipe)
        if self.creates_firewalls:
            ensure_firewalls(self.pipe, config_path or "config")
        self.cfg = cfg
        self._window_seen = {"evicted": 0, "late": 0, "ahead": 0, "resets": 0}
        engine = self.pipe.decoder.windows
        if cfg.event.snapshot and engine is not None:
            result, line = window_snapshots.restore(engine, cfg.event.snapshot)
            self.metrics.window_snapshots.inc(result=result)
            self.log(line)
            if result == "restored":  # warm windows: no rule waits for them, unless they are empty at the first event
                self.pipe.rules.warmup.restored = engine.clock
                waits = [r.cfg.rule for r in self.pipe.rules.rules if r.warmup_span > 0]
                if waits and engine.clock > float("-inf"):
                    self.log(
                        f"warm-up: none, window state restored; rules {', '.join(waits)} alert from the first event "
                        "(unless it comes a rule's warm-up or more past the snapshot's newest, "
                        f"{iso_utc(engine.clock)}: its windows are empty then, and it warms up)"
                    )
            # the restored totals are the previous run's: this run's metrics count from here
            self._window_seen = {
                "evicted": engine.evicted,
                "late": engine.late,
                "ahead": engine.ahead,
                "resets": engine.resets,
            }
        self.metrics.set_bundle(self.pipe.bundle.bundle_id, self.pipe.bundle.manifest.source_model.sha256)
        self.sinks = build_sinks(cfg.sinks)
        self.dead_letter = JsonlSink(cfg.dead_letter)
        fail = cfg.on_sink_failure
        self.spool = LineSpool(fail.spool_path, fail.max_spool_bytes) if fail.policy == "spool" else None
        self._file_sinks = any(isinstance(s, FileSink) for s in self.sinks.values())
        self._outputs_seen: dict[tuple[int, str], int] = {}  # (id of the stage, state) -> count mirrored
        self.queue = EventQueue(cfg.batching.queue_size, cfg.batching.queue_bytes)
        context = SourceContext(
            self.queue, cfg.batching.max_line_bytes, drain_s=cfg.batching.drain_s, reuse_port=self.reuse_port
        )
        self.sources = [build_source(s, context) for s in cfg.sources]
        self._source_kind: dict[str, str] = {}  # origin -> kind, for metric labels
        self.server = (
            MetricsServer(self.metrics.registry, cfg.metrics.host, cfg.metrics.port, healthy=self.healthy)
            if cfg.metrics.enabled
            else None
        )
        self.agent_info = {"id": cfg.agent.id, "hostname": socket.gethostname(), "version": __version__}
        self._stopping = False
        self._reload_requested = False
        self.first_scored_wall: float | None = None  # time.time() of the first scored event
        self.span: list[float | None] = [None, None]  # perf_counter: first batch start, last batch end
        self.busy_s = 0.0
        self.counts = {"received": 0, "scored": 0, "filtered": 0, "rejected": 0, "alerts": 0}
        # per (what, rule): counted since the rule's last log line of that kind, and when it was
        # (over budget, keys evicted: each said at most once a minute per rule)
        self._rule_pending: dict[tuple[str, str], int] = {}
        self._rule_logged: dict[tuple[str, str], float] = {}
        self.warmup_held: dict[str, int] = {}  # alerts the warm-up held, by rule (the summary's)
        self.uncorroborated: dict[str, int] = {}  # matches a rule's min_matches held, by rule (the summary's)
        self.reloads = {"ok": 0, "failed": 0}
        self._drops_seen: dict[tuple[int, str], int] = {}  # (source index, reason or connection event) -> count
        self._truncated_seen: dict[str, int] = {}  # sink name -> its `truncated` already counted
        self._drain_until: float | None = None  # set at stop: the agent waits this long for sources to drain
        self._waiting_since: dict[int, float] = {}  # source index -> monotonic time first seen waiting

    # ------------------------------------------------------------ lifecycle
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        signal.signal(signal.SIGHUP, lambda *_: self.request_reload())

    def stop(self) -> None:
        self._stopping = True
        self.service.stopping()

    def healthy(self) -> bool:
        """/healthz: false while stopping, and from a fatal sink failure on."""
        return not self._stopping and self.fatal is None

    def _status_line(self, what: str = "serving") -> str:
        """systemd's STATUS=: what the agent serves and its counts so far."""
        c, origins = self.counts, " ".join(s.origin for s in self.sources)
        return (
            f"{what} bundle {self.pipe.bundle.bundle_id}, sources {origins}; received {c['received']}, "
            f"scored {c['scored']}, alerts {c['alerts']}, rejected {c['rejected']}"
        )

    def request_reload(self) -> None:
        self._reload_requested = True

    def load_config(self) -> AgentConfig:
        """The config a reload reads (a worker adapts it: worker_agent.py)."""
        assert self.config_path is not None
        return load_agent_config(self.config_path, self.overrides)

    def check_pipeline(self, pipe: Pipeline) -> None:
        """A new pipeline's last check before it serves (a worker's: its shard key); raise to refuse it."""

    def run(self) -> dict[str, Any]:
        for s in self.sources:
            s.start()
        if self.server:
            self.server.start()
        self.metrics.set_up(True)
        self.log(
            f"jenga-edge {__version__}: bundle {self.pipe.bundle.bundle_id} ({self.pipe.bundle.trust_note}), tasks "
            f"{', '.join(self.pipe.scorer.tasks)}{' (merged graph)' if self.pipe.scorer.merged else ''}, "
            f"sources {', '.join(s.origin for s in self.sources)}"
        )
        self.service.ready(self._status_line("serving"))  # the pipeline is built, sinks and sources open
        try:
            self._loop()
        finally:
            self._shutdown()
        return self.summary()

    def _loop(self) -> None:
        b = self.cfg.batching
        next_stats = time.monotonic() + (self.cfg.metrics.stats_interval_s or float("inf"))
        next_wait_check = 0.0
        while True:
            self.service.alive(self._status_line)  # the watchdog's ping: only while the loop turns
            if self._reload_requested:
                self.service.reloading()
                self._reload()
                self.service.ready(self._status_line("serving"))
            if self._stopping and self._drain_until is None:
                # Sources stop reading new input and hand over what they hold (drain_s);
                # the loop keeps scoring until they are done.
                self._drain_until = time.monotonic() + self.cfg.batching.drain_s + 2.0
                for s in self.sources:
                    s.stop()
            if self.queue.depth() == 0:
                # Idle: sleep until an event arrives (or 0.1 s, to notice signals),
                # so max_wait_ms: 0 means "no batching delay", not a busy loop.
                self.queue.wait_nonempty(IDLE_POLL_S)
            lines = self.queue.take(b.max_batch, b.max_wait_ms / 1000.0)
            if lines:
                self.process_safely(lines)
            self._record_outcomes()  # what action workers finished meanwhile
            if not lines and (self._drained() or self._sources_done()) and self.queue.depth() == 0:
                return
            self._sync_drops()
            if time.monotonic() >= next_wait_check:  # a few times a second, not once per batch
                self._sync_waiting()
                self._sync_outputs()
                next_wait_check = time.monotonic() + WAIT_CHECK_S
            if time.monotonic() >= next_stats:
                self.log(self.metrics.stats_line())
                next_stats = time.monotonic() + self.cfg.metrics.stats_interval_s

    def _sources_done(self) -> bool:
        return all(s.eof for s in self.sources)

    def _drained(self) -> bool:
        """Stopping, and every source has handed over what it held (or the drain took too long)."""
        if self._drain_until is None:
            return False
        return not any(s.running for s in self.sources) or time.monotonic() >= self._drain_until

    def _shutdown(self) -> None:
        # Stop and join the sources first: a source may still hand over a line it
        # had in hand (or a final partial line) after stop(). Then drain.
        self.service.stopping()  # also at the end of a stdin source (stop() sends it at a signal)
        for s in self.sources:
            s.stop()
            s.abandon()  # the loop waited for the drain; nothing blocks any more
        for s in self.sources:
            s.join(2.0)
        while True:
            lines = self.queue.take(self.cfg.batching.max_batch, 0.0)
            if not lines:
                break
            self.process_safely(lines)  # anything accepted is still scored or dead-lettered
        self._sync_drops()
        self._log_stop_drops()
        self._count_rule_limits(flush=True)  # what the once-a-minute log has not said yet
        self._log_warmup_at_stop()
        windows = self.pipe.decoder.windows
        if self.cfg.event.snapshot and windows is not None:
            result, line = window_snapshots.save(windows, self.cfg.event.snapshot)
            self.metrics.window_snapshots.inc(result=result)
            self.log(line)
        for step in [
            lambda: close_actions(self.pipe.actions),  # each outcome (in_flight_at_stop too) before it returns
            self._join_retired,  # the stages a reload handed to a closer thread
            self._end_running_commands,  # none outlives the agent
            self._record_outcomes,  # what the action workers finished, before the sinks close
            *(s.close for s in [*self.sinks.values(), self.dead_letter]),
            self._count_queued_losses,
            *([self.spool.close] if self.spool is not None else []),
            self._close_results,  # an outcome that still comes is logged
        ]:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - one failing sink must not skip the others
                self.log(f"shutdown: {type(exc).__name__}: {exc}")
        self._sync_outputs()
        if self.fatal is not None:
            self.log_error(f"stopped: {self.fatal}")
        if self.server:
            self.server.stop()
        self.metrics.set_up(False)

    def _end_running_commands(self) -> None:
        """Commands still running after the action queues' drain are ended (by the PID the agent
        started them with) and said; their outcome was recorded as in_flight_at_stop."""
        stages = [a.stage for a in self.pipe.actions.values() if isinstance(a, BackgroundAction)]
        stages += [st for _, old in self._retired for st in old]
        pids = end_running_commands({st.worker for st in stages if st.worker is not None})
        if pids:
            time.sleep(0.05)  # let their workers report the end while the sinks are open
            self.log(
                f"stop: ended {len(pids)} action command(s) still running at the drain deadline "
                f"(pid {', '.join(map(str, pids))})"
            )

    def _sync_drops(self) -> None:
        """Sources count drops (by reason) and listener connection events themselves;
        mirror the new ones, and log what a peer did to a listener (rate-limited)."""
        for i, s in enumerate(self.sources):
            for reason, n in list(s.drops.items()):
                delta = n - self._drops_seen.get((i, reason), 0)
                if delta > 0:
                    self.metrics.dropped.inc(delta, source=s.kind, reason=reason)
                    self._drops_seen[(i, reason)] = n
                    if reason == "kernel":
                        self.failures.warn(f"kernel:{s.origin}", f"{s.origin}: {n} datagram(s) dropped by the "
                                           "kernel so far: receive buffer full (raise recv_buffer_bytes)")  # fmt: skip
            for event, n in s.connection_counts().items():
                delta = n - self._drops_seen.get((i, event), 0)
                if delta > 0:
                    self._drops_seen[(i, event)] = n
                    self.metrics.connections.inc(delta, source=s.kind, event=event)
                    if event in _EVENT_LOG:
                        self.failures.warn(f"{event}:{s.origin}", f"{s.origin}: {_EVENT_LOG[event]} ({n} so far)")

    def _log_stop_drops(self) -> None:
        """What the stop could not hand over in time is said once, at exit."""
        for s in self.sources:
            n = s.drops.get("stop", 0)
            if n:
                self.log(f"stop: {s.origin}: {n} line(s) read or held at SIGTERM were not scored within "
                         f"batching.drain_s={self.cfg.batching.drain_s:g}; counted as dropped "
                         '(jenga_events_dropped_total{reason="stop"})')  # fmt: skip

    def _sync_waiting(self) -> None:
        """Report sources that cannot read their input (a followed file missing) once it
        lasts past WAIT_GRACE_S (a rotation's gap is not a failure), then every minute."""
        now = time.monotonic()
        waiting: Counter[str] = Counter()
        for i, s in enumerate(self.sources):
            why, key = s.waiting, f"source:{s.origin}"
            if why is None:
                if self._waiting_since.pop(i, None) is not None:
                    self.failures.resolved(key, f"{s.origin}: readable again")
                continue
            since = self._waiting_since.setdefault(i, now)
            if now - since >= WAIT_GRACE_S:
                waiting[s.kind] += 1
                self.failures.warn(key, f"{s.origin}: {why} (for {now - since:.0f} s)", count=False)
        for kind in {s.kind for s in self.sources}:
            self.metrics.sources_waiting.set(waiting[kind], source=kind)

    def _deliver(self, alerts: list[dict[str, Any]]) -> int:
        """Hand the batch's alerts to every sink; what a sink could not deliver is counted and
        logged. Returns how many of the alerts (from the first on) a durable record holds: a
        file sink wrote them, or the on_sink_failure spool took them (all, without file sinks)."""
        if not alerts:
            return 0
        recorded = 0 if self._file_sinks else len(alerts)
        for name, sink in self.sinks.items():
            try:
                lost, kept = sink.write_batch(alerts), len(alerts)
            except Exception as exc:  # noqa: BLE001 - a sink failure loses alerts, never events
                kept = getattr(exc, "kept", 0)  # whole lines written before a write failed
                rest = alerts[kept:]
                spooled = self._sink_failed(name, exc, rest)
                lost, kept = (0, len(alerts)) if spooled else (len(rest), kept)
                error: str | None = f"{type(exc).__name__}: {exc}"
            else:
                error = sink.last_error
            if lost:
                self.metrics.sink_lost.inc(lost, sink=name)
                self.failures.warn(f"sink:{name}", f"sink {name}: {lost} alert(s) not delivered: {error}")
            if isinstance(sink, FileSink):
                recorded = max(recorded, kept)
        return recorded

    def _write_dead(self, records: list[dict[str, Any]]) -> None:
        """Dead letters; what the file cannot take goes to the spool or is counted as lost."""
        if not records:
            return
        try:
            self.dead_letter.write_batch(records)
        except Exception as exc:  # noqa: BLE001 - the events stay rejected; their records are what is lost
            rest = records[getattr(exc, "kept", 0) :]
            if not self._sink_failed("dead_letter", exc, rest):
                self.metrics.dead_letters_lost.inc(len(rest))
                self.failures.warn("sink:dead_letter", f"dead_letter: {len(rest)} record(s) lost: {exc}")

    def _sink_failed(self, name: str, exc: Exception, records: list[dict[str, Any]]) -> bool:
        """A file sink or the dead-letter file failed: spool its records (True), or stop (False)."""
        error = f"{type(exc).__name__}: {exc}"
        if self.spool is not None:
            if self.spool.add([{"sink": name, "error": error, "record": r} for r in records]):
                self.metrics.sink_spooled.inc(len(records), sink=name)
                self.failures.warn(f"spool:{name}", f"{name}: {error}; {len(records)} record(s) spooled")
                return True
            error += f"; and the spool failed: {self.spool.last_error}"
        if self.fatal is None:
            self.fatal = f"{'sink ' if name != 'dead_letter' else ''}{name} cannot be written: {error}"
            self.log(f"{self.fatal}; stopping (on_sink_failure: {self.cfg.on_sink_failure.policy})")
        self.stop()
        return False

    def _count_truncated(self, name: str, sink: Sink) -> None:
        """A sink that cuts oversize alerts to its limit (syslog) counts them in `truncated`
        (on its output stage's worker): mirrored in the metric and logged (rate-limited), as
        they arrive altered. Read a few times a second and at stop (_sync_outputs)."""
        truncated = getattr(sink, "truncated", 0)
        delta = truncated - self._truncated_seen.get(name, 0)
        if delta > 0:
            self._truncated_seen[name] = truncated
            self.metrics.sink_truncated.inc(delta, sink=name)
            why = getattr(sink, "last_truncated", None)
            self.failures.warn(f"sink:{name}:truncated", f"sink {name}: {delta} alert(s) truncated: {why}")

    def _action_done(self, name: str, outcome: dict[str, Any]) -> None:
        """A failed action is counted per action and logged."""
        if outcome.get("result") == "failed":
            self.metrics.action_failures.inc(action=name)
            self.failures.warn(f"action:{name}", f"action {name} failed: {outcome.get('reason')}")

    def _action_result(self, name: str, alert: Any, outcome: dict[str, Any]) -> None:
        """From an action's worker thread: the scoring thread records it (sinks are not shared).
        Once the sinks are closed (a command that outlived the stop's drain_s), it is logged."""
        with self._results_lock:
            if not self._results_closed:
                self._results.append((name, alert, outcome))
                return
        self._log_late(name, alert, outcome)

    def _log_late(self, name: str, alert: Any, outcome: dict[str, Any]) -> None:
        self.log(f"action {name} for alert {alert.get('alert_id')} finished after its record was closed: "
                 f"{outcome.get('result')} ({outcome.get('reason')}); not recorded")  # fmt: skip

    def _close_results(self) -> None:
        """At stop, after the sinks closed: from now on an outcome is logged (none is lost silently)."""
        with self._results_lock:
            self._results_closed = True
        while self._results:
            self._log_late(*self._results.popleft())

    def _record_outcomes(self) -> None:
        """Record the final outcomes of queued actions as `action_result` records keyed by
        alert_id, in the sinks that keep them (jsonl, sqlite); count and log them."""
        if not self._results:
            return
        now, records = iso_utc(time.time()), []
        while self._results:
            name, alert, outcome = self._results.popleft()
            outcome["name"] = name
            if outcome.get("late"):  # the real end of an in_flight_at_stop, already counted as that
                self.log(f"action {name} for alert {alert.get('alert_id')} finished after the stop gave up "
                         f"on it: {outcome.get('result')} ({outcome.get('reason')})")  # fmt: skip
            else:
                self.metrics.actions.inc(type=str(outcome.get("type")), result=outcome.get("result", "unknown"))
                self._action_done(name, outcome)
            records.append(
                {
                    "timestamp": now,
                    "event_type": "action_result",
                    "alert_id": alert.get("alert_id"),
                    "rule": alert.get("rule"),
                    "action": outcome,
                }
            )
        for name, sink in self.sinks.items():
            write = getattr(sink, "write_outcomes", None)
            if write is None:
                continue
            try:
                write(records)
            except Exception as exc:  # noqa: BLE001 - handled like an alert write, counted apart
                rest = records[getattr(exc, "kept", 0) :]  # whole lines written before the failure stay
                if not self._sink_failed(name, exc, rest):
                    self.metrics.action_results_lost.inc(len(rest), sink=name)
                    self.failures.warn(f"sink:{name}", f"sink {name}: {len(rest)} action result(s) lost: {exc}")

    def _run_actions(self, pending: list[tuple[int, str, dict[str, Any]]], held: list[dict[str, Any]]) -> None:
        """Queue the blocking actions of alerts a durable record holds (`held`, the batch's first ones)."""
        recorded = len(held)
        if pending and recorded and not self._synced(held):
            recorded = 0
        for index, name, alert in pending:
            action = self.pipe.actions[name]
            if index < recorded:
                action.run(alert)  # queued (or spooled, dropped by its queue's policy): the outcome follows
                continue
            # No record holds this alert: acting on it would leave a block nobody can explain.
            self.metrics.actions.inc(type=action.type, result="skipped")
            self.failures.warn(f"action:{name}", f"action {name} not run: its alert could not be recorded")

    def _synced(self, held: list[dict[str, Any]]) -> bool:
        """Wait for the file sinks' fsync of this batch: only a batch with a live action pays
        it (the others' fsync overlaps the next batch). A failed fsync is a sink failure for
        the `held` alerts (this batch's, written but maybe not on disk): spooled under
        on_sink_failure: spool (then the spool holds them: True), else counted lost for the
        sink (False: nothing acts on them; policy stop stops the agent). An earlier batch
        covered by the same fsync (group commit) is not known here any more; its loss
        shows as this error only."""
        ok = True
        for name, sink in self.sinks.items():
            wait = getattr(sink, "sync_wait", None)
            if wait is None:
                continue
            try:
                wait()
            except Exception as exc:  # noqa: BLE001 - an fsync error is a sink failure
                if not self._sink_failed(name, exc, held):
                    self.metrics.sink_lost.inc(len(held), sink=name)
                    self.failures.warn(f"sink:{name}", f"sink {name}: {len(held)} alert(s) may not be on disk: {exc}")
                    ok = False
        return ok

    def _retire_actions(self, actions: dict[str, Action]) -> None:
        """A reload's old action queues drain on a closer thread, each within its drain_s, never
        on the scoring thread; their outcomes still reach _results, their counts _sync_outputs."""
        stages = [a.stage for a in actions.values() if isinstance(a, BackgroundAction)]
        if not stages:
            return
        closer = threading.Thread(target=close_actions, args=(actions,), name="output:reload-closer", daemon=True)
        closer.start()
        self._retired.append((closer, stages))

    def _join_retired(self) -> None:
        for closer, _stages in self._retired:
            closer.join()  # bounded: each stage's close returns at its drain_s
        self._sync_outputs()

    def _sync_outputs(self) -> None:
        """Mirror the output stages' counters (queued, done, failed, dropped, spooled, in_flight)
        and depths; a reload's old stages until their closer is done (keyed per stage object:
        the new stage of an action counts from 0 under the same name)."""
        stages: list[OutputStage[Any]] = [s.stage for s in self.sinks.values() if isinstance(s, QueuedSink)]
        stages += [a.stage for a in self.pipe.actions.values() if isinstance(a, BackgroundAction)]
        finished = [r for r in self._retired if not r[0].is_alive()]  # before reading: their last counts
        m = self.metrics
        for stage in stages + [st for _, old in self._retired for st in old]:
            for state, now in list(stage.counts.items()):
                key = (id(stage), state)
                seen = self._outputs_seen.get(key, 0)
                if now > seen:
                    m.output_items.inc(now - seen, stage=stage.name, state=state)
                    self._outputs_seen[key] = now
                    if state == "dropped":  # by the queue's when_full policy, or at stop: said
                        self.failures.warn(
                            f"output:{stage.name}:dropped",
                            f"{stage.name}: {now - seen} item(s) dropped by its output queue "
                            "(full, or left at stop; jenga_output_items_total)",
                        )
        for stage in stages:
            m.output_depth.set(stage.depth(), stage=stage.name)
        for closer, old in finished:
            self._retired.remove((closer, old))
            for stage in old:
                for state in stage.counts:
                    self._outputs_seen.pop((id(stage), state), None)
        for name, sink in self.sinks.items():
            self._count_truncated(name, sink.inner if isinstance(sink, QueuedSink) else sink)

    def _count_queued_losses(self) -> None:
        """At shutdown: what a queued sink lost after its last write_batch."""
        for name, sink in self.sinks.items():
            if isinstance(sink, QueuedSink):
                lost = sink.take_lost()
                if lost:
                    self.metrics.sink_lost.inc(lost, sink=name)
                    self.failures.warn(f"sink:{name}", f"sink {name}: {lost} alert(s) not delivered: {sink.last_error}")

    def _reload(self) -> None:
        self._reload_requested = False
        try:
            cfg = self.load_config() if self.config_path else self.cfg
            pipe = build_pipeline(cfg, self.config_path or "config", self._action_result)
            self.check_pipeline(pipe)
            if self.creates_firewalls:
                ensure_firewalls(pipe, self.config_path or "config")
        except JengaError as exc:
            self.metrics.reloads.inc(result="failed")
            self.reloads["failed"] += 1
            self.log_error(f"reload failed, still serving bundle {self.pipe.bundle.bundle_id}: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a reload must never take the serving pipeline down
            self.metrics.reloads.inc(result="failed")
            self.reloads["failed"] += 1
            self.log_error(
                f"reload failed, still serving bundle {self.pipe.bundle.bundle_id}: {type(exc).__name__}: {exc}"
            )
            return
        old = self.pipe
        _carry_state(old, pipe)
        if old.decoder.windows is not None:
            kept = (
                pipe.decoder.windows is not None and pipe.decoder.windows.definition == old.decoder.windows.definition
            )
            self.log("reload: window state " + ("kept" if kept else "reset (window definitions changed)"))
        fixed = [name for name in RESTART_ONLY if getattr(cfg, name) != getattr(self.cfg, name)]
        if fixed:
            self.log(f"reload: changes to {', '.join(fixed)} take effect on restart; keeping the running ones")
            for name in fixed:
                setattr(cfg, name, getattr(self.cfg, name))
        self.pipe, self.cfg = pipe, cfg
        self._retire_actions(old.actions)
        self.metrics.reloads.inc(result="ok")
        self.reloads["ok"] += 1
        self.metrics.set_bundle(pipe.bundle.bundle_id, pipe.bundle.manifest.source_model.sha256)
        self.log(
            f"reloaded: bundle {pipe.bundle.bundle_id} ({pipe.bundle.trust_note}), tasks {', '.join(pipe.scorer.tasks)}"
            f"{' (merged graph)' if pipe.scorer.merged else ''}"
        )

    # -------------------------------------------------------------- scoring
    def process_safely(self, lines: Batch) -> None:
        """process(), but a batch that fails to score (an onnxruntime error) is
        still accounted for: each of its events is rejected with reason
        `processing_error`, and the agent keeps running. (A sink failure is not
        one: process() handles it, see _deliver.)"""
        try:
            self.process(lines)
        except Exception as exc:  # noqa: BLE001 - nothing may take the loop down
            reason = f"{type(exc).__name__}: {str(exc)[:200]}"
            self.log(f"batch of {len(lines)} failed, dead-lettered: {reason}")
            now = iso_utc(time.time())
            rejects = [Reject(i, "processing_error", None, reason) for i in range(len(lines))]
            self._write_dead([self._dead(r, lines, now) for r in rejects])
            self._count_received(lines)
            self.metrics.rejected.inc(len(lines), reason="processing_error")
            self.counts["received"] += len(lines)
            self.counts["rejected"] += len(lines)

    def process(self, lines: Batch) -> list[dict[str, Any]]:
        """Score one micro-batch: decode, score, rules, actions, sinks, dead letters."""
        t0 = time.perf_counter()
        if self.span[0] is None:
            self.span[0] = t0
        pipe = self.pipe
        batch = pipe.decoder.decode(lines.data, lines.oversize_flags())
        scores = pipe.scorer.score(batch.num, batch.cat, batch.text, batch.text_len)
        hits = pipe.rules.evaluate(batch, scores)
        if pipe.rules.warmed:  # the rules evaluate ran a warm-up for
            self._sync_warmup(pipe.rules.warmed)
        now = iso_utc(time.time())  # one timestamp per batch: strftime per alert was a hot spot
        pending: list[tuple[int, str, dict[str, Any]]] = []  # blocking actions, run once recorded
        alerts = self._alerts(hits, batch, lines, now, pending)
        recorded = self._deliver(alerts)  # the durable record first ...
        self._write_dead([self._dead(r, lines, now) for r in batch.rejects])
        self._run_actions(pending, alerts[:recorded])  # ... then the actions (module docstring)
        t1 = time.perf_counter()
        self._account(lines, batch, alerts, t1 - t0)
        self.span[1], self.busy_s = t1, self.busy_s + (t1 - t0)
        return alerts

    def _alert(
        self,
        hit: Hit,
        batch: DecodedBatch,
        lines: Batch,
        now: str,
        index: int,
        pending: list[tuple[int, str, dict[str, Any]]],
    ) -> dict[str, Any]:
        """One hit's alert (`index`: its place among the batch's alerts)."""
        return self._alerts([hit], batch, lines, now, pending, index)[0]

    def _alerts(
        self,
        hits: list[Hit],
        batch: DecodedBatch,
        lines: Batch,
        now: str,
        pending: list[tuple[int, str, dict[str, Any]]],
        start: int = 0,
    ) -> list[dict[str, Any]]:
        """The hits' alerts, in order. What is the same for all of a batch's alerts (the
        columns of key fields, each rule's constants) is looked up once per batch, not per
        alert: building alerts was the agent's largest Python cost per event."""
        if not hits:
            return []
        keys, ev = batch.keys, self.pipe.cfg.event
        key_cols = [(k, keys[k]) for k in ev.keys if k in keys]  # a key field no event has is never set
        field_cols = [(k, keys.get(k)) for k in ev.fields]
        origins, index = lines.origins, batch.index
        single = origins[0][0] if len(origins) == 1 else None  # the usual batch: one source
        prefix, agent_info = f"{self.run_id}-", self.agent_info
        constants: dict[int, tuple[Any, ...]] = {}  # id(rule) -> what its alerts share
        out = []
        for i, hit in enumerate(hits, start):
            rule, row = hit.rule, hit.row
            c = constants.get(id(rule))
            if c is None:
                c = constants[id(rule)] = self._rule_constants(rule)
            name, task, threshold, model, output, tags, target, acts, key = c
            self._alert_seq += 1
            score = hit.score
            alert: dict[str, Any] = {
                "alert_id": f"{prefix}{self._alert_seq}",
                "timestamp": now,
                "event_type": "alert",
                "agent": agent_info,
                "rule": name,
                "priority": hit.priority,
                "task": task,  # None: a counting rule
                "score": round(score, 6) if score is not None else None,
                "threshold": threshold,
                "model": model,
                "source": single if single is not None else lines.origin_of(index[row]),
            }
            if hit.label is not None:
                alert["label"] = hit.label
            for k, col in key_cols:
                v = col[row]
                if v is not None:
                    alert[k] = v
            alert["fields"] = {k: col[row] if col is not None else None for k, col in field_cols} if field_cols else {}
            if output:
                values = {k: v[row] for k, v in keys.items()}
                alert["output"] = render_output(output, {**values, **alert})
            if tags:
                alert["tags"] = tags
            if target:
                alert["target"] = {"field": target, "value": keys[target][row]}
            if acts:
                who = keys[key][row] if key else alert.get("src_ip")
                alert["actions"] = [self._act(a, alert, who, i, pending) for a in acts]
            else:
                alert["actions"] = []
            out.append(alert)
        return out

    def _rule_constants(self, rule: Rule) -> tuple[Any, ...]:
        """What every alert of `rule` carries the same: name, task, threshold, the graph that
        scored it, output, tags, target, actions to run, the key field."""
        cfg, task = rule.cfg, rule.task
        return (
            cfg.rule,
            task.name if task else None,
            rule.threshold,
            self.pipe.model_refs[task.name] if task else None,
            cfg.output,
            cfg.tags,
            cfg.target,
            [a for a in cfg.actions if a != RESERVED_ACTION],
            cfg.key,
        )

    def _act(
        self, name: str, alert: dict[str, Any], key: Any, index: int, pending: list[tuple[int, str, dict[str, Any]]]
    ) -> dict[str, Any]:
        """The checks (allowlist, rate limit) run here, on the scoring thread; an action that
        can block is only planned (outcome `queued`, run once its alert is recorded); a dry
        run, which runs nothing, records its outcome now."""
        pipe = self.pipe
        action = pipe.actions[name]
        # The allowlist protects what the action would touch (the firewall's
        # ip_field; src/dest for exec), not just the rule's key.
        touched = [key, *action.addresses(alert)]
        if any(v is not None and pipe.rules.allowlisted(v) for v in touched):
            outcome = {"type": action.type, "result": "skipped", "reason": "allowlisted"}
        elif not pipe.limiter.allow():
            outcome = {"type": action.type, "result": "skipped", "reason": "rate_limited"}
        elif isinstance(action, BackgroundAction):
            pending.append((index, name, alert))
            return {"type": action.type, "target": action.target, "result": "queued", "name": name}
        else:
            try:
                outcome = action.run(alert)
            except Exception as exc:  # noqa: BLE001 - an action failure is recorded, never fatal
                outcome = {"type": action.type, "result": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        outcome["name"] = name
        self.metrics.actions.inc(type=action.type, result=outcome.get("result", "unknown"))
        self._action_done(name, outcome)
        return outcome

    def _dead(self, r: Reject, lines: Batch, now: str) -> dict[str, Any]:
        ln = lines[r.index]
        text = ln.data[:DEAD_LETTER_LINE_MAX].decode("utf-8", errors="replace")
        return {
            "timestamp": now,
            "source": ln.origin,
            "reason": r.reason,
            "field": r.field,
            "message": r.message,
            "line": text,
            "truncated": len(ln.data) > DEAD_LETTER_LINE_MAX or ln.oversize,
        }

    def _account(self, lines: Batch, batch: DecodedBatch, alerts: list[dict[str, Any]], seconds: float) -> None:
        m = self.metrics
        self._count_received(lines)
        for task in self.pipe.scorer.tasks:
            if len(batch):
                m.scored.inc(len(batch), task=task)
        reasons: dict[str, int] = {}
        for r in batch.rejects:
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
        for reason, n in reasons.items():
            m.rejected.inc(n, reason=reason)
        if alerts:
            for (task, priority), n in Counter((a["task"] or "-", a["priority"]) for a in alerts).items():
                m.alerts.inc(n, task=task, priority=priority)
        self._count_rule_limits()
        if self.pipe.rules.uncorroborated:
            for rule, n in self.pipe.rules.take_uncorroborated().items():
                m.alerts_uncorroborated.inc(n, rule=rule)
                self.uncorroborated[rule] = self.uncorroborated.get(rule, 0) + n
        if batch.filtered:
            m.filtered.inc(len(batch.filtered))
        if self.pipe.decoder.windows is not None:
            self._sync_windows(self.pipe.decoder.windows)
        m.batch_seconds.observe(seconds)
        m.queue_depth.set(self.queue.depth())
        self.counts["received"] += len(lines)
        self.counts["scored"] += len(batch)
        self.counts["filtered"] += len(batch.filtered)
        self.counts["rejected"] += len(batch.rejects)
        self.counts["alerts"] += len(alerts)
        if self.first_scored_wall is None and len(batch):
            self.first_scored_wall = time.time()

    # what each kind of rule limit says in its once-a-minute line, per rule
    _RULE_LIMIT_LINES = {
        "over_budget": "{n} alert(s) over its max_alerts_per_min, counted, not raised (jenga_alerts_over_budget_total)",
        "evicted": "forgot {n} key(s), least recently seen first, to keep at most 100,000 (their cooldowns and "
        "min_matches; jenga_rule_keys_evicted_total)",
    }

    def _count_rule_limits(self, flush: bool = False) -> None:
        """Alerts a rule's budget left out, and keys a rule forgot at its bound: counted always,
        logged once a minute per rule and kind (`flush`: now, whatever the minute)."""
        rules, m = self.pipe.rules, self.metrics
        for what, taken, counter in (
            ("over_budget", rules.take_over_budget(), m.alerts_over_budget),
            ("evicted", rules.take_evicted(), m.rule_keys_evicted),
        ):
            for rule, n in taken.items():
                counter.inc(n, rule=rule)
                self._rule_pending[what, rule] = self._rule_pending.get((what, rule), 0) + n
        now = time.monotonic()
        for (what, rule), n in list(self._rule_pending.items()):
            if flush or now - self._rule_logged.get((what, rule), -1e9) >= 60.0:
                self.log(f"rule {rule}: " + self._RULE_LIMIT_LINES[what].format(n=n))
                self._rule_logged[what, rule] = now
                del self._rule_pending[what, rule]

    def _sync_warmup(self, warming: list[Rule]) -> None:
        """Alerts the warm-up held: counted in the metric (and the summary); its start and end
        are each logged once (a reload that reset the windows starts a new one)."""
        rules = self.pipe.rules
        for rule, n in rules.take_warmup_held().items():
            self.metrics.alerts_warmup_held.inc(n, rule=rule)
            self.warmup_held[rule] = self.warmup_held.get(rule, 0) + n
        warm = rules.warmup
        if warm.start is None:
            return
        warming = [r for r in warming if not warm.restored_warm(r.warmup_span)]  # a restored snapshot's: warm
        if not warming:
            return
        if not warm.announced:
            warm.announced = True
            spans = ", ".join(f"{r.cfg.rule} ({r.warmup_span:g} s)" for r in warming)
            self.log(f"warm-up: no window state restored; rules {spans} hold their alerts until event time has "
                     f"run that long past the first event ({iso_utc(warm.start)}); held alerts are counted "
                     "(jenga_alerts_warmup_held_total), never raised")  # fmt: skip
        over: dict[float, list[Rule]] = {}
        for r in warming:
            if warm.over(r.warmup_span):
                over.setdefault(r.warmup_span, []).append(r)
        for span_s, ended in sorted(over.items()):
            held = ", ".join(f"{r.cfg.rule} {self.warmup_held.get(r.cfg.rule, 0)}" for r in ended)
            self.log(f"warm-up over: event time has run {span_s:g} s past the first event "
                     f"({iso_utc(warm.start + span_s)}); alerts held: {held}")  # fmt: skip

    def _log_warmup_at_stop(self) -> None:
        """A stream that ended (or a stop) within the warm-up: said, with what was held."""
        warm, warming = self.pipe.rules.warmup, self.pipe.rules.warming
        if not warming or warm.start is None:
            return
        held = ", ".join(f"{r.cfg.rule} {self.warmup_held.get(r.cfg.rule, 0)} (of {r.warmup_span:g} s)"
                         for r in warming)  # fmt: skip
        self.log(f"stop: warm-up not over, event time ran {warm.clock - warm.start:.1f} s past the first event; "
                 f"alerts held: {held}")  # fmt: skip

    def _sync_windows(self, engine: WindowEngine) -> None:
        m, seen = self.metrics, self._window_seen
        totals: list[tuple[str, int, MetricCounter, dict[str, str]]] = [
            ("evicted", engine.evicted, m.window_evictions, {}),
            ("late", engine.late, m.window_late, {}),
            ("ahead", engine.ahead, m.window_ahead, {}),
            ("resets", engine.resets, m.window_resets, {}),
        ]
        totals += [
            (f"own_{reason}", n, m.window_own_time_clipped, {"reason": reason})
            for reason, n in engine.own_clipped.items()
        ]
        for what, now, counter, labels in totals:
            if now > seen.get(what, 0):
                counter.inc(now - seen.get(what, 0), **labels)
            seen[what] = now  # a reload that reset the state starts the engine's counts again
        m.window_keys.set(engine.live_keys)

    def _count_received(self, lines: Batch) -> None:
        by_kind: dict[str, int] = {}
        for origin, n in lines.origins:  # few distinct origins per batch
            kind = self._source_kind.get(origin) or self._kind_of(origin)
            by_kind[kind] = by_kind.get(kind, 0) + n
        for kind, n in by_kind.items():
            self.metrics.received.inc(n, source=kind)

    def _kind_of(self, origin: str) -> str:
        """A source's kind by its origin (a listener's bound address is known once it runs)."""
        self._source_kind = {s.origin: s.kind for s in self.sources}
        # an origin no source has (events handed to process() directly) stays "other", unless
        # it starts with a source's kind (lines another worker routed here: "exchange:w1:...");
        # remembered, so such batches do not rebuild the map each time
        prefix = origin.split(":", 1)[0]
        kind = prefix if prefix in {s.kind for s in self.sources} else "other"
        return self._source_kind.setdefault(origin, kind)

    def summary(self) -> dict[str, Any]:
        snap = self.metrics.snapshot()
        start, end = self.span
        return {
            "received": self.counts["received"],
            "scored": self.counts["scored"],
            "filtered": self.counts["filtered"],
            "rejected": self.counts["rejected"],
            "alerts": self.counts["alerts"],
            "warmup_held": dict(self.warmup_held),
            "uncorroborated": dict(self.uncorroborated),
            "dropped": sum(sum(s.drops.values()) for s in self.sources),
            "dropped_by_reason": dict(sum((Counter(s.drops) for s in self.sources), Counter())),
            "reloads": dict(self.reloads),
            "metrics": snap,
            "bundle_id": self.pipe.bundle.bundle_id,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "busy_s": round(self.busy_s, 6),
            "span_s": round(end - start, 6) if start is not None and end is not None else 0.0,
            "first_scored_wall": self.first_scored_wall,
            "sink_lost": snap["sink_lost"],
            "sink_truncated": snap["sink_truncated"],
            "dead_letters_lost": snap["dead_letters_lost"],
            "sink_spooled": snap["sink_spooled"],
            "fatal": self.fatal,
        }


def summary_line(summary: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in summary.items() if k != "metrics"})
