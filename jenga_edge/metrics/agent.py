"""The agent's metrics: the fixed set of `jenga_*` series, a snapshot and a stats line.

Counters take per-batch counts (`scored.inc(len(batch), task=t)`), never one
call per event. `snapshot()` gives plain numbers for the agent's summary and
`stats_line()` one compact line for its log.
"""

from __future__ import annotations

from typing import Any

from .registry import BATCH_BUCKETS, Registry, no_ip_labels


class AgentMetrics:
    """The agent's metrics. Counters take per-batch counts: `scored.inc(len(batch), task=t)`.

    Every metric here checks label values with `no_ip_labels`: an IP address as
    a label value raises ValueError (see there for why).
    """

    def __init__(self, registry: Registry | None = None, *, recent_batches: int = 1024):
        r = self.registry = registry if registry is not None else Registry()
        chk = no_ip_labels
        self.received = r.counter(
            "jenga_events_received_total", "Events read from an input, by source.", ("source",), label_check=chk
        )
        self.scored = r.counter("jenga_events_scored_total", "Events scored, by task.", ("task",), label_check=chk)
        self.rejected = r.counter(
            "jenga_events_rejected_total", "Events refused before scoring, by reason.", ("reason",), label_check=chk
        )
        self.filtered = r.counter(
            "jenga_events_filtered_total",
            "Events the event model's `where` filter set aside (another record type): read, never scored.",
        )
        self.window_keys = r.gauge("jenga_window_keys", "Live keys held by window features.", label_check=chk)
        self.window_evictions = r.counter(
            "jenga_window_evictions_total",
            "Keys evicted from window state (least recently seen, at event.max_keys).",
        )
        self.window_late = r.counter(
            "jenga_window_late_total", "Events later than lag_s behind the window clock (counted at clock - lag_s)."
        )
        self.window_own_time_clipped = r.counter(
            "jenga_window_own_time_clipped_total",
            "Events a window's own time field (`time:`) placed elsewhere than it says, by reason: late (more "
            "than time_lag_s behind the window clock: at clock - time_lag_s), ahead (of the clock: at the "
            "clock), missing (no value: at the clock); once per event and time field.",
            ("reason",),
            label_check=chk,
        )
        self.window_snapshots = r.counter(
            "jenga_window_snapshots_total",
            "Window snapshots, by result: restored, none, unreadable, refused (at start); saved, failed (at stop).",
            ("result",),
            label_check=chk,
        )
        self.window_resets = r.counter(
            "jenga_window_resets_total",
            "Window state emptied: the clock came back after a burst of events far ahead (wild timestamps).",
        )
        self.window_ahead = r.counter(
            "jenga_window_ahead_total", "Events more than max_ahead_s ahead of the window clock (counted at the clock)."
        )
        self.dropped = r.counter(
            "jenga_events_dropped_total",
            "Events dropped, by source and reason: queue_full (UDP), stop (read or held by the kernel at "
            "SIGTERM, not queued by batching.drain_s), kernel (UDP datagrams the kernel dropped: receive buffer full).",
            ("source", "reason"),
            label_check=chk,
        )
        self.connections = r.counter(
            "jenga_connections_total",
            "Listener connections, by source and event: accepted, rejected (max_connections open, closed at once), "
            "evicted (the one idle longest, closed to admit a new one), idle_closed (idle_timeout_s), "
            "peer_limit (its address held max_connections_per_peer, closed at once).",
            ("source", "event"),
            label_check=chk,
        )
        self.alerts = r.counter(
            "jenga_alerts_total", "Alerts raised, by task and priority.", ("task", "priority"), label_check=chk
        )
        self.alerts_over_budget = r.counter(
            "jenga_alerts_over_budget_total",
            "Alerts a rule's max_alerts_per_min left out (counted, logged, never raised), by rule.",
            ("rule",),
            label_check=chk,
        )
        self.alerts_warmup_held = r.counter(
            "jenga_alerts_warmup_held_total",
            "Alerts a rule's warm-up held back while the windows filled, after a start without window state "
            "(counted, logged, never raised), by rule.",
            ("rule",),
            label_check=chk,
        )
        self.alerts_uncorroborated = r.counter(
            "jenga_alerts_uncorroborated_total",
            "Matches a rule's min_matches held: its key had not matched often enough within the span yet "
            "(counted, never raised), by rule.",
            ("rule",),
            label_check=chk,
        )
        self.rule_keys_evicted = r.counter(
            "jenga_rule_keys_evicted_total",
            "Keys a rule forgot, least recently seen first, to keep its per-key state (quiet time, min_matches) "
            "to 100,000: such a key may alert again at once, or needs its matches again; by rule.",
            ("rule",),
            label_check=chk,
        )
        self.actions = r.counter(
            "jenga_actions_total", "Response actions taken, by type and result.", ("type", "result"), label_check=chk
        )
        self.sink_lost = r.counter(
            "jenga_sink_alerts_lost_total",
            "Alerts a sink could not deliver (a collector down, a closed stream), by sink.",
            ("sink",),
            label_check=chk,
        )
        self.action_results_lost = r.counter(
            "jenga_action_results_lost_total",
            "Action outcome records (action_result) a file sink could not write nor spool, by sink.",
            ("sink",),
            label_check=chk,
        )
        self.sink_truncated = r.counter(
            "jenga_sink_truncated_total",
            "Alerts a sink cut to its size limit before sending (syslog max_message_bytes), by sink.",
            ("sink",),
            label_check=chk,
        )
        self.dead_letters_lost = r.counter(
            "jenga_dead_letters_lost_total",
            "Rejected events whose dead-letter record could not be written (nor spooled).",
        )
        self.sink_spooled = r.counter(
            "jenga_sink_failure_spooled_total",
            "Records a failed file sink or dead-letter file could not take, kept in on_sink_failure's spool, by sink.",
            ("sink",),
            label_check=chk,
        )
        self.output_items = r.counter(
            "jenga_output_items_total",
            "Items through an output queue (a blocking sink's batches, a blocking action's alerts), by stage "
            "and state: queued, done, failed, dropped (by policy or at stop), spooled, in_flight (still running "
            "when the stop's drain_s ran out).",
            ("stage", "state"),
            label_check=chk,
        )
        self.output_depth = r.gauge(
            "jenga_output_queue_depth", "Items waiting in an output queue, by stage.", ("stage",), label_check=chk
        )
        self.action_failures = r.counter(
            "jenga_action_failures_total",
            "Actions that failed (including a webhook's final result on its worker), by action.",
            ("action",),
            label_check=chk,
        )
        self.sources_waiting = r.gauge(
            "jenga_sources_waiting",
            "Sources that cannot read their input now (a followed file missing), by kind.",
            ("source",),
            label_check=chk,
        )
        self.reloads = r.counter("jenga_reloads_total", "Bundle reloads, by result.", ("result",), label_check=chk)
        self.systemd_notify_failures = r.counter(
            "jenga_systemd_notify_failures_total",
            "sd_notify messages (READY, WATCHDOG, STATUS ...) that could not be sent to $NOTIFY_SOCKET.",
        )
        self.batch_seconds = r.histogram(
            "jenga_batch_seconds",
            "Wall time to score one batch, seconds.",
            buckets=BATCH_BUCKETS,
            recent=recent_batches,
            label_check=chk,
        )
        self.queue_depth = r.gauge("jenga_queue_depth", "Events waiting to be scored.", label_check=chk)
        self.bundle_info = r.gauge(
            "jenga_bundle_info", "The loaded bundle (value is always 1).", ("bundle_id", "sha256"), label_check=chk
        )
        self.up = r.gauge("jenga_up", "1 while the agent is running and healthy.", label_check=chk)
        self.up.set(1)

    def set_bundle(self, bundle_id: str, sha256: str) -> None:
        """Record the loaded bundle; the previous bundle's series is dropped atomically."""
        self.bundle_info.replace(1, bundle_id=bundle_id, sha256=sha256)

    def set_up(self, up: bool) -> None:
        self.up.set(1 if up else 0)

    def snapshot(self) -> dict[str, Any]:
        """Plain numbers (JSON-serialisable) for the agent's summary and stats line."""
        bundle = None
        for (bundle_id, sha256), v in self.bundle_info.series().items():
            if v:
                bundle = {"bundle_id": bundle_id, "sha256": sha256}
        alerts = self.alerts.series()
        actions = self.actions.series()
        by_priority: dict[str, float] = {}
        for (_, priority), v in alerts.items():
            by_priority[priority] = by_priority.get(priority, 0) + v
        by_result: dict[str, float] = {}
        for (_, result), v in actions.items():
            by_result[result] = by_result.get(result, 0) + v
        p50, p99 = self.batch_seconds.quantile(0.5), self.batch_seconds.quantile(0.99)
        return {
            "received": self.received.total(),
            "received_by_source": self.received.labelled(),
            # Events, not task scores: an event every task scored counts once. These
            # counters move once per processed batch, so the difference is exact.
            "scored": self.received.total() - self.rejected.total() - self.filtered.total(),
            "filtered": self.filtered.total(),
            "scored_by_task": self.scored.labelled(),
            "rejected": self.rejected.total(),
            "rejected_by_reason": self.rejected.labelled(),
            "dropped": self.dropped.total(),
            "dropped_by_source": _by(self.dropped.series(), 0),
            "dropped_by_reason": _by(self.dropped.series(), 1),
            "connections_by_event": _by(self.connections.series(), 1),
            "alerts": sum(alerts.values()),
            "alerts_by_task_priority": {f"{t}/{p}": v for (t, p), v in sorted(alerts.items())},
            "alerts_by_priority": by_priority,
            "alerts_warmup_held": self.alerts_warmup_held.total(),
            "alerts_warmup_held_by_rule": self.alerts_warmup_held.labelled(),
            "window_late": self.window_late.total(),
            "window_ahead": self.window_ahead.total(),
            "window_own_time_clipped": self.window_own_time_clipped.total(),
            "window_own_time_clipped_by_reason": self.window_own_time_clipped.labelled(),
            "alerts_uncorroborated": self.alerts_uncorroborated.total(),
            "alerts_uncorroborated_by_rule": self.alerts_uncorroborated.labelled(),
            "actions": sum(actions.values()),
            "actions_by_type_result": {f"{t}/{r}": v for (t, r), v in sorted(actions.items())},
            "actions_by_result": by_result,
            "sink_lost": self.sink_lost.total(),
            "sink_lost_by_sink": self.sink_lost.labelled(),
            "sink_truncated": self.sink_truncated.total(),
            "sink_truncated_by_sink": self.sink_truncated.labelled(),
            "dead_letters_lost": self.dead_letters_lost.total(),
            "sink_spooled": self.sink_spooled.total(),
            "output_items": {f"{st}/{state}": v for (st, state), v in sorted(self.output_items.series().items())},
            "action_failures": self.action_failures.total(),
            "action_failures_by_action": self.action_failures.labelled(),
            "sources_waiting": sum(self.sources_waiting.series().values()),
            "reloads": self.reloads.labelled(),
            "queue_depth": self.queue_depth.value(),
            "batches": self.batch_seconds.count(),
            "batch_seconds_sum": self.batch_seconds.sum(),
            "p50_batch_s": p50,
            "p99_batch_s": p99,
            "bundle": bundle,
            "up": self.up.value(),
        }

    def stats_line(self) -> str:
        """One compact line, e.g. `received=1200 scored=1190 rejected=10 (bad_json=4) ...`."""
        s = self.snapshot()
        rejected = _with_parts(f"rejected={_num(s['rejected'])}", s["rejected_by_reason"])
        failures = [
            _with_parts(f"sink_lost={_num(s['sink_lost'])}", s["sink_lost_by_sink"]),
            _with_parts(f"sink_truncated={_num(s['sink_truncated'])}", s["sink_truncated_by_sink"]),
            f"dead_letters_lost={_num(s['dead_letters_lost'])}",
            f"sink_spooled={_num(s['sink_spooled'])}",
            _with_parts(f"action_failed={_num(s['action_failures'])}", s["action_failures_by_action"]),
            f"sources_waiting={_num(s['sources_waiting'])}",
            # events the windows placed elsewhere than their time says (counted at the clock or its lag)
            f"window_late={_num(s['window_late'])}",
            f"window_ahead={_num(s['window_ahead'])}",
            _with_parts(
                f"own_time_clipped={_num(s['window_own_time_clipped'])}", s["window_own_time_clipped_by_reason"]
            ),
        ]
        # Failures are shown only once there is one: the common line stays short.
        values = (
            s["sink_lost"],
            s["sink_truncated"],
            s["dead_letters_lost"],
            s["sink_spooled"],
            s["action_failures"],
            s["sources_waiting"],
            s["window_late"],
            s["window_ahead"],
            s["window_own_time_clipped"],
        )
        shown = [f for f, v in zip(failures, values) if v]
        return " ".join(
            [
                f"received={_num(s['received'])}",
                f"scored={_num(s['scored'])}",
                *([f"filtered={_num(s['filtered'])}"] if s["filtered"] else []),
                rejected,
                _with_parts(f"dropped={_num(s['dropped'])}", s["dropped_by_reason"]),
                f"alerts={_num(s['alerts'])}",
                # alerts a warm-up held (shown once there is one), by rule
                *(
                    [_with_parts(f"warmup_held={_num(s['alerts_warmup_held'])}", s["alerts_warmup_held_by_rule"])]
                    if s["alerts_warmup_held"]
                    else []
                ),
                # matches min_matches held (shown once there is one), by rule
                *(
                    [
                        _with_parts(
                            f"uncorroborated={_num(s['alerts_uncorroborated'])}", s["alerts_uncorroborated_by_rule"]
                        )
                    ]
                    if s["alerts_uncorroborated"]
                    else []
                ),
                f"actions={_num(s['actions'])}",
                f"queue={_num(s['queue_depth'])}",
                f"p50_batch={_ms(s['p50_batch_s'])}",
                f"p99_batch={_ms(s['p99_batch_s'])}",
                *shown,
            ]
        )


def _by(series: dict[tuple[str, ...], float], i: int) -> dict[str, float]:
    """A two-label counter's totals by its i-th label."""
    out: dict[str, float] = {}
    for labels, v in series.items():
        out[labels[i]] = out.get(labels[i], 0) + v
    return out


def _with_parts(text: str, parts: dict[str, float]) -> str:
    nonzero = {k: v for k, v in sorted(parts.items()) if v}
    return text + (" (" + " ".join(f"{k}={_num(v)}" for k, v in nonzero.items()) + ")" if nonzero else "")


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v) if isinstance(v, int) else f"{v:g}"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000.0
    return f"{ms:.1f}ms" if ms >= 0.1 else f"{ms:.2g}ms"
