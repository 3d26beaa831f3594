"""`jenga-edge run --workers N`: one scoring process per core, behind one supervisor.

The supervisor checks the config once (the shard key among it: sharding.py), then
forks N workers before it imports onnxruntime or starts a thread; each builds
and runs today's `Agent` (as a `WorkerAgent`) with its worker index. What the
workers share and what each has:

* Listeners: TCP and UDP sources bind in every worker with SO_REUSEPORT; the
  kernel spreads connections (TCP) and datagrams (UDP, by source address) over
  them. Unix-socket, file and stdin sources are read by worker 0 only (one
  reader per file: its position is one process's).
* Keyed state (window features, rule cooldowns) lives in the worker that owns
  the key: each worker reads a batch, reads each line's shard value
  (decode.field_reader), keeps its own lines and sends the others' raw lines to
  their owner over an AF_UNIX socket pair (exchange.py); the owner scores them
  as lines of its inbox source (kind ``exchange``), never sends them on. Without
  keyed state nothing is read per line: lines a single reader (worker 0's file,
  stdin, unix socket) read are handed out to the workers batch by batch, and
  listener lines stay where the kernel put them.
* Per worker: file sinks, the dead-letter file, spools get ``.wK`` before their
  extension (alerts.jsonl -> alerts.w0.jsonl); the window snapshot
  ``.wKofN`` (a snapshot of another worker count is not loaded: its keys are
  sharded differently). Rule max_alerts_per_min and the actions' rate_limit are
  divided among the workers (rounded up), so the agent's total is what the
  config says. Firewall sets (ensure) are created by worker 0 alone, before the
  others start.
* systemd: workers never talk to $NOTIFY_SOCKET. Each gets a notify socket of
  the supervisor's (the usual Notifier, unchanged); the supervisor says READY
  once every worker is ready, WATCHDOG only when every worker pinged since its
  last one, STATUS with the sums, RELOADING and STOPPING once.
* Metrics: the supervisor serves the configured endpoint; each worker serves
  its own on a loopback port the supervisor scrapes (metrics/aggregate.py);
  /healthz is healthy while every worker is.

Signals: SIGTERM/SIGINT/SIGHUP go to each worker by its PID. At exit each worker
sends its summary over a pipe; the supervisor prints one combined line and exits
0 only when every worker did. A worker that dies (a signal, a non-zero status)
is logged with its index, PID and status; the supervisor stops the others and
exits non-zero: systemd's Restart= brings the whole set back (restarting one
shard alone would come back with no window state while its peers kept theirs).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from .actions import webhook
from .actions.base import ActionConfig
from .agent import Agent, Pipeline
from .config import AgentConfig
from .contract.errors import ConfigError, JengaError
from .event_queue import OVERSIZE, PARTIAL, Batch, EventQueue
from .exchange import Link, MergedQueue, is_inbox_batch, message
from .sharding import LOCAL, ShardReader, check_computed, check_windows, keyed_state, shard_key
from .sinks.base import SinkConfig
from .systemd import Notifier

SHARED_KINDS = ("tcp", "udp")  # read by every worker (SO_REUSEPORT); the others by worker 0
STOP_GRACE_S = 15.0  # after drain_s: how long the supervisor waits for workers before SIGKILL
METRICS_FIELD = "X_JENGA_METRICS_PORT"  # a worker's notify field: its metrics port (not forwarded)
POLL_S = 0.1
_COUNT = re.compile(r"(received|scored|alerts|rejected) (\d+)")


# ------------------------------------------------------------------ config per worker
def worker_path(path: str, k: int, suffix: str | None = None) -> str:
    """alerts.jsonl -> alerts.w0.jsonl; a name without extension gets .w0 at its end."""
    if not path:
        return path
    head, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    if not stem:  # a dot file: .state
        stem, ext = name, ""
    return os.path.join(head, f"{stem}.{suffix or f'w{k}'}{ext}")


def worker_config(cfg: AgentConfig, k: int, n: int) -> AgentConfig:
    """Worker `k` of `n`'s config: its sources, its files, its share of the budgets."""
    if n == 1:
        return cfg
    cfg = copy.deepcopy(cfg)
    cfg.sources = [s for s in cfg.sources if s.kind in SHARED_KINDS or k == 0]
    for name, sink in cfg.sinks.items():
        for key in sink.written_files(name):
            if key == "path":
                sink.path = worker_path(sink.path, k)  # type: ignore[attr-defined]
    outputs: list[tuple[str, SinkConfig | ActionConfig]] = [*cfg.sinks.items(), *cfg.actions.items()]
    for name, entry in outputs:
        if entry.queue is not None and entry.queue.spool_path:
            entry.queue.spool_path = worker_path(entry.queue.spool_path, k)
        if isinstance(entry, webhook.Config):  # its spool file: <spool_dir>/<spool_name>.jsonl
            entry.spool_name = f"{entry.spool_name or name}.w{k}"
    cfg.dead_letter.path = worker_path(cfg.dead_letter.path, k)
    cfg.on_sink_failure.spool_path = worker_path(cfg.on_sink_failure.spool_path, k)
    cfg.event.snapshot = worker_path(cfg.event.snapshot, k, f"w{k}of{n}")
    for rule in cfg.rules:
        if rule.max_alerts_per_min is not None:
            rule.max_alerts_per_min = math.ceil(rule.max_alerts_per_min / n)
    cfg.rate_limit.max_actions = math.ceil(cfg.rate_limit.max_actions / n)
    if cfg.metrics.enabled:  # served by the supervisor; each worker's on a loopback port it scrapes
        cfg.metrics.host, cfg.metrics.port = "127.0.0.1", 0
    return cfg


def check_config(cfg: AgentConfig) -> str | None:
    """What the config alone says about sharding (the bundle's windows are checked by
    each worker as it builds its pipeline): the shard key its own windows and rules
    share (None: none needed). ConfigError names the key path."""
    if cfg.agent.workers == 1:
        return None
    check_windows(cfg.event.windows)
    return shard_key(keyed_state(cfg.event.windows, cfg.rules), cfg.agent.shard_key)


def pipeline_shard_key(cfg: AgentConfig, pipe: Pipeline) -> str | None:
    """The shard key for the pipeline's windows (the bundle's too) and rules."""
    model = pipe.decoder.model
    bundle_windows = {k: w for k, w in model.windows.items() if k not in cfg.event.windows}
    agent_windows = {k: w for k, w in model.windows.items() if k in cfg.event.windows}
    check_windows(agent_windows)
    check_windows(bundle_windows, "bundle windows")
    state = keyed_state(agent_windows, cfg.rules) + keyed_state(bundle_windows, [], "bundle windows")
    key = shard_key(state, cfg.agent.shard_key)
    if key is not None:
        check_computed(key, model)
    return key


# ------------------------------------------------------------------ the worker
class WorkerAgent(Agent):
    """An Agent that is worker `index` of `workers`: it routes what its sources read to
    the key's owner and scores what its peers route to it (module docstring)."""

    reuse_port = True

    def __init__(
        self,
        cfg: AgentConfig,
        index: int,
        workers: int,
        peers: dict[int, socket.socket],
        config_path: str | None = None,
        overrides: list[str] | tuple[str, ...] = (),
        log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
        service: Notifier | None = None,
    ):
        self.index, self.workers = index, workers
        self.creates_firewalls = index == 0
        self.shard: str | None = None
        self._shard_checked = False
        super().__init__(worker_config(cfg, index, workers), config_path, overrides, log=log, service=service)
        self._fixed = (cfg.agent.workers, cfg.agent.shard_key)
        b = self.cfg.batching
        self.inbox = EventQueue(b.queue_size, b.queue_bytes)
        self.links = {p: Link(p, s, self.inbox, b.max_line_bytes) for p, s in sorted(peers.items())}
        for link in self.links.values():
            link.drain_s = b.drain_s
        self.outside = list(self.sources)
        self.source_queue = self.queue
        self.sources += list(self.links.values())
        self.queue = MergedQueue(self.source_queue, self.inbox, self._end_forwarding_when_done)  # type: ignore[assignment]
        self.router = ShardReader(self.pipe.decoder.model, self.shard, workers) if self.shard else None
        self.forwarded = self.metrics.registry.counter(
            "jenga_events_forwarded_total",
            "Events read here and sent to the worker that owns their key (or their share), by that worker.",
            ("worker",),
        )
        self.counts.update(forwarded=0, exchanged=0)
        self._spread_kind: dict[str, bool] = {}  # origin -> read by one worker only (spread without keys)
        self._next = 0
        self._forwarding_done = False
        snapshot = self.cfg.event.snapshot
        if snapshot and not os.path.exists(snapshot) and os.path.exists(cfg.event.snapshot):
            self.log(f"window snapshot {cfg.event.snapshot} is a single worker's: not loaded by {workers} workers "
                     "(keys are sharded by worker); windows start empty")  # fmt: skip

    def check_pipeline(self, pipe: Pipeline) -> None:
        """The shard key is fixed for the run: a reload that would change it is refused."""
        key = pipeline_shard_key(self.cfg if self._shard_checked else pipe.cfg, pipe)
        if self._shard_checked and key != self.shard:
            raise ConfigError(
                f"the shard key would change from {self.shard!r} to {key!r}: that takes effect on restart"
            )
        self.shard, self._shard_checked = key, True

    def load_config(self) -> AgentConfig:
        cfg = super().load_config()
        if (cfg.agent.workers, cfg.agent.shard_key) != self._fixed:
            self.log("reload: changes to agent.workers or agent.shard_key take effect on restart")
            cfg.agent.workers, cfg.agent.shard_key = self._fixed
        return worker_config(cfg, self.index, self.workers)

    def run(self) -> dict[str, Any]:
        if self.server is not None:
            self.server.start()  # the port first: the supervisor scrapes it (Agent.run's start is a no-op then)
            self.service.send(f"{METRICS_FIELD}={self.server.port}")
        return super().run()

    # --------------------------------------------------------------- routing
    def process_safely(self, lines: Batch) -> None:
        if is_inbox_batch(lines):
            self.counts["exchanged"] += len(lines)
            super().process_safely(lines)
            return
        kept = self._route(lines)
        if kept:
            super().process_safely(kept)

    def _route(self, batch: Batch) -> Batch:
        """Send the lines other workers own to them; the rest (this worker's) as a batch."""
        owners = self.router.owners(batch.data) if self.router is not None else self._spread(batch)
        if owners is None:
            return batch
        me = self.index
        flags = batch.oversize
        origins = [o for o, c in batch.origins for _ in range(c)]
        out: dict[tuple[int, str, bool], list[bytes]] = {}
        keep: list[bytes] = []
        keep_flags: list[int] = []
        keep_origins: list[tuple[str, int]] = []
        for i, line in enumerate(batch.data):
            owner, flag = owners[i], (flags[i] if flags is not None else 0)
            if owner in (LOCAL, me) or flag == OVERSIZE:
                keep.append(line)
                keep_flags.append(flag)
                if keep_origins and keep_origins[-1][0] == origins[i]:
                    keep_origins[-1] = (origins[i], keep_origins[-1][1] + 1)
                else:
                    keep_origins.append((origins[i], 1))
            else:
                out.setdefault((owner, origins[i], flag == PARTIAL), []).append(line)
        if not out:
            return batch
        for (owner, origin, partial), lines in out.items():
            self._forward(owner, origin, partial, lines)
        return Batch(keep, keep_flags, keep_origins) if keep else Batch([])

    def _spread(self, batch: Batch) -> list[int] | None:
        """Without keyed state: the lines of a source one worker reads alone go to the
        workers in turn, a batch's run at a time; listener lines stay (None: all stay)."""
        owners: list[int] = []
        moved = False
        for origin, count in batch.origins:
            single = self._spread_kind.get(origin)
            if single is None:
                kinds = {s.origin: s.kind for s in self.outside}
                single = self._spread_kind[origin] = kinds.get(origin, "tcp") not in SHARED_KINDS
            if single:
                target, self._next = self._next, (self._next + 1) % self.workers
                moved = moved or target != self.index
                owners += [target] * count
            else:
                owners += [LOCAL] * count
        return owners if moved else None

    def _forward(self, owner: int, origin: str, partial: bool, lines: list[bytes]) -> None:
        n = len(lines)
        self.counts["received"] += n
        self.counts["forwarded"] += n
        self.forwarded.inc(n, worker=str(owner))
        link = self.links[owner]
        if not link.send(message(lines, origin, partial), n, self._serve_inbox):
            self.failures.warn(
                f"exchange:{owner}",
                f"exchange: {n} line(s) for worker {owner} not delivered (gone, or took nothing for "
                'a while); counted as dropped (jenga_events_dropped_total{reason="exchange"})',
            )

    def _serve_inbox(self) -> None:
        """While a send waits for room: score one batch of what peers sent (never sent on),
        so a peer waiting to send to us can go on."""
        lines = self.inbox.take(self.cfg.batching.max_batch, 0.0)
        if lines:
            self.counts["exchanged"] += len(lines)
            super().process_safely(lines)

    def _end_forwarding_when_done(self) -> None:
        """Once this worker's own sources have ended and its queue is empty it will send
        nothing more: its peers' inboxes read the end (their stop waits for it)."""
        if self._forwarding_done or self.source_queue.depth():
            return
        if any(s.running for s in self.outside):
            return
        self._forwarding_done = True
        for link in self.links.values():
            link.close_sending()

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        out.update(worker=self.index, pid=os.getpid(), forwarded=self.counts["forwarded"])
        out["exchanged"] = self.counts["exchanged"]
        out["shard_key"] = self.shard
        return out


# ------------------------------------------------------------------ the supervisor
class WorkerFailure(JengaError):
    """A worker died (a signal, a crash; exit code 1) or reported an error at start (a
    config or bundle error; its own exit code): the supervisor stopped the others."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def worker_files(cfg: AgentConfig) -> list[str]:
    """What `validate` shows: each worker's sources and files."""
    out = []
    for k in range(cfg.agent.workers):
        w = worker_config(cfg, k, cfg.agent.workers)
        files = [s.path for s in w.sinks.values() if hasattr(s, "path")] + [w.dead_letter.path]
        files += [p for p in (w.on_sink_failure.spool_path, w.event.snapshot) if p]
        sources = ", ".join(s.kind for s in w.sources) or "none (scores what the others route to it)"
        out.append(f"w{k}: sources {sources}; files {', '.join(files)}")
    return out


class _WorkerLog:
    """A worker's log: its lines start with its index; warning and error keep their level."""

    def __init__(self, log: Callable[[str], None], index: int):
        self._log, self._prefix = log, f"[w{index}] "

    def __call__(self, line: str) -> None:
        self._log(self._prefix + line)

    def warning(self, line: str) -> None:
        getattr(self._log, "warning", self._log)(self._prefix + line)

    def error(self, line: str) -> None:
        getattr(self._log, "error", self._log)(self._prefix + line)


class _Worker:
    """The supervisor's view of one worker."""

    def __init__(self, index: int, notify: socket.socket, notify_path: str):
        self.index, self.notify, self.notify_path = index, notify, notify_path
        self.pid = 0
        self.summary_r = self.summary_w = -1
        self.received = bytearray()
        self.status: int | None = None  # os.waitpid's, once it exited
        self.ready = self.pinged = self.stopping = False
        self.counts: dict[str, int] = {}
        self.metrics_port: int | None = None

    @property
    def alive(self) -> bool:
        return self.status is None

    def report(self) -> dict[str, Any]:
        try:
            out: dict[str, Any] = json.loads(bytes(self.received) or b"{}")
        except ValueError:
            out = {}
        return out


class Supervisor:
    """Starts `agent.workers` workers and stands for them (module docstring)."""

    def __init__(
        self,
        cfg: AgentConfig,
        config_path: str | None = None,
        overrides: list[str] | tuple[str, ...] = (),
        log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
        service: Notifier | None = None,
    ):
        self.cfg, self.config_path, self.overrides = cfg, config_path, overrides
        self.log = log
        self.service = service or Notifier()
        self.n = cfg.agent.workers
        self.shard = check_config(cfg)  # the config's own keyed state, before anything starts
        self.started = time.monotonic()
        self.workers: list[_Worker] = []
        self.failure: str | None = None  # why the supervisor stopped the workers
        self.error: tuple[str, int] | None = None  # a worker's own error line (config, bundle, sink) and code
        self._signal: int | None = None
        self._reload = False
        self._stop_sent = False
        self._stop_deadline: float | None = None
        self._ready_sent = False
        self._next_status = 0.0
        self._dir = ""
        self.server: Any = None

    # ------------------------------------------------------------ start
    def start(self) -> None:
        """Fork the workers: sockets, pipes and the mesh first, signals blocked meanwhile
        (a worker installs its handlers, then takes them)."""
        self._dir = tempfile.mkdtemp(prefix="jenga-edge-workers-")
        for k in range(self.n):
            path = os.path.join(self._dir, f"w{k}.sock")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sock.bind(path)
            sock.setblocking(False)
            self.workers.append(_Worker(k, sock, path))
        mesh: dict[int, dict[int, socket.socket]] = {k: {} for k in range(self.n)}
        for i in range(self.n):
            for j in range(i + 1, self.n):
                mesh[i][j], mesh[j][i] = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        firewall_first = any(getattr(a, "ensure", False) for a in self.cfg.actions.values())
        signals = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        try:
            for w in self.workers:
                if w.index == 1 and firewall_first:
                    self._wait_ready(self.workers[0])  # worker 0 creates the firewall sets alone
                w.summary_r, w.summary_w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    self._child(w, mesh, old)  # never returns
                w.pid = pid
                os.close(w.summary_w)
                os.set_blocking(w.summary_r, False)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
            for socks in mesh.values():
                for s in socks.values():
                    s.close()
        how = f"shard key {self.shard}" if self.shard else "events shared out by listener and batch"
        self.log(f"jenga-edge: {self.n} workers (pid {', '.join(str(w.pid) for w in self.workers)}), {how}")

    def _child(self, w: _Worker, mesh: dict[int, dict[int, socket.socket]], mask: Any) -> None:
        code, report = 1, dict[str, Any]()
        try:
            _parent_death_signal()
            for other in self.workers:
                other.notify.close()
                if other is not w and other.summary_r >= 0:
                    os.close(other.summary_r)
            os.close(w.summary_r)
            for k, socks in mesh.items():
                if k != w.index:
                    for s in socks.values():
                        s.close()
            wd = self.service.watchdog_s
            notifier = Notifier(w.notify_path, wd / 2 if wd else None)
            agent = WorkerAgent(self.cfg, w.index, self.n, mesh[w.index], self.config_path, self.overrides,
                                log=_WorkerLog(self.log, w.index), service=notifier)  # fmt: skip
            agent.install_signal_handlers()
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            summary = agent.run()
            report = {"summary": {k: v for k, v in summary.items() if k != "metrics"}}
            code = 2 if agent.fatal is not None else 0
        except JengaError as exc:
            report, code = {"error": str(exc), "exit_code": exc.exit_code}, exc.exit_code
        except BaseException as exc:  # noqa: BLE001 - a worker reports and exits, whatever happened
            import traceback

            traceback.print_exc()
            report = {"error": f"worker {w.index}: {type(exc).__name__}: {exc}", "exit_code": 1}
        try:
            data = json.dumps(report, default=str).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(w.summary_w, view) :]
            sys.stderr.flush()
        finally:
            os._exit(code)

    def _wait_ready(self, w: _Worker, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while not w.ready and time.monotonic() < deadline:
            self._read_notify(w, POLL_S)
            if self._reap(w):
                return

    # ------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        """Serve until every worker has exited; the combined summary."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "_reload", True))
        self.start()
        if self.cfg.metrics.enabled:
            self._serve_metrics()
        sel = selectors.DefaultSelector()
        for w in self.workers:
            sel.register(w.notify, selectors.EVENT_READ, w)
            sel.register(w.summary_r, selectors.EVENT_READ, w)
        try:
            while any(w.alive or w.summary_r >= 0 for w in self.workers):
                for key, _ in sel.select(POLL_S):
                    w = key.data
                    if key.fileobj is w.notify:
                        self._read_notify(w, 0.0)
                    elif not self._read_summary(w):
                        sel.unregister(key.fileobj)
                self._turn()
        finally:
            self._close()
        return self.summary()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signal = signum

    def _turn(self) -> None:
        if self._reload:
            self._reload = False
            self.service.reloading()
            for w in self.workers:
                w.ready = False
            self._ready_sent = False
            self._kill_all(signal.SIGHUP)
        if self._signal is not None and not self._stop_sent:
            self._stop(self._signal)
        for w in self.workers:
            if w.alive and self._reap(w):
                self._exited(w)
        if self._stop_deadline is not None and time.monotonic() > self._stop_deadline:
            late = [w for w in self.workers if w.alive]
            if late:
                self.log(f"jenga-edge: worker(s) {', '.join(str(w.index) for w in late)} still running "
                         f"{STOP_GRACE_S:g} s past drain_s: killed")  # fmt: skip
                self.failure = self.failure or "workers did not stop in time"
                self._kill_all(signal.SIGKILL)
            self._stop_deadline = float("inf")
        self._notify_upstream()

    def _stop(self, signum: int) -> None:
        self._stop_sent = True
        self.service.stopping()
        self._kill_all(signum)
        self._stop_deadline = time.monotonic() + self.cfg.batching.drain_s + STOP_GRACE_S

    def _kill_all(self, signum: int) -> None:
        for w in self.workers:
            if w.alive:
                try:
                    os.kill(w.pid, signum)  # by the PID we forked
                except ProcessLookupError:
                    pass

    def _reap(self, w: _Worker) -> bool:
        """True once the worker has exited (its status kept)."""
        if w.status is None:
            pid, status = os.waitpid(w.pid, os.WNOHANG)
            if pid == 0:
                return False
            w.status = status
        return True

    def _exited(self, w: _Worker) -> None:
        """A worker exited: status 0 is its normal end (a stop, or its input's end). Otherwise
        the others are stopped: after an error it reported (config, bundle, a sink under
        on_sink_failure: stop), said as that error; after a signal or a crash, said here."""
        assert w.status is not None
        self._read_summary(w)
        report = w.report()
        if os.WIFEXITED(w.status) and os.WEXITSTATUS(w.status) == 0:
            return
        if "error" in report and self.error is None:
            self.error = (str(report["error"]), int(report.get("exit_code", 2)))
        if not ("error" in report or "summary" in report):
            self.failure = self.failure or f"worker {w.index} (pid {w.pid}) {_describe(w.status)}"
            self.log(f"jenga-edge: worker {w.index} (pid {w.pid}) {_describe(w.status)}; stopping the other workers")
        if not self._stop_sent:
            self._stop(signal.SIGTERM)

    # ------------------------------------------------------------ notify
    def _read_notify(self, w: _Worker, timeout: float) -> None:
        if timeout:
            sel = selectors.DefaultSelector()
            sel.register(w.notify, selectors.EVENT_READ)
            sel.select(timeout)
            sel.close()
        for _ in range(64):
            try:
                data = w.notify.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            self._on_notify(w, data.decode("utf-8", "replace"))

    def _on_notify(self, w: _Worker, text: str) -> None:
        fields = dict(line.split("=", 1) for line in text.split("\n") if "=" in line)
        if METRICS_FIELD in fields and fields[METRICS_FIELD].isdigit():
            w.metrics_port = int(fields[METRICS_FIELD])
        if "STATUS" in fields:
            w.counts.update({k: int(v) for k, v in _COUNT.findall(fields["STATUS"])})
        if fields.get("READY") == "1":
            w.ready = True
        if fields.get("WATCHDOG") == "1":
            w.pinged = True
        if fields.get("STOPPING") == "1":
            w.stopping = True

    def _notify_upstream(self) -> None:
        """READY once all are, WATCHDOG when every worker pinged since the last one, STATUS sums."""
        svc = self.service
        if not svc.enabled:
            return
        if not self._ready_sent and all(w.ready for w in self.workers):
            self._ready_sent = True
            svc.ready(self._status_line())
        if any(w.stopping for w in self.workers) and not self._stop_sent:
            svc.stopping()  # a worker stops by itself (stdin's end): said once
        if svc.watchdog_s is not None and self._ready_sent and all(w.pinged or not w.alive for w in self.workers):
            for w in self.workers:
                w.pinged = False
            svc.send("WATCHDOG=1", f"STATUS={self._status_line()}")
        elif time.monotonic() >= self._next_status and self._ready_sent:
            self._next_status = time.monotonic() + 10.0
            svc.send(f"STATUS={self._status_line()}")

    def _status_line(self) -> str:
        sums = {k: sum(w.counts.get(k, 0) for w in self.workers) for k in ("received", "scored", "alerts", "rejected")}
        return f"serving with {self.n} workers; " + ", ".join(f"{k} {v}" for k, v in sums.items())

    # ------------------------------------------------------------ metrics
    def _serve_metrics(self) -> None:
        from .metrics.server import MetricsServer

        m = self.cfg.metrics
        self.server = MetricsServer(_Scraper(self), m.host, m.port, healthy=self.healthy)  # type: ignore[arg-type]
        self.server.start()

    def healthy(self) -> bool:
        """/healthz: every worker alive, ready and healthy by its own /healthz."""
        if self._stop_sent or not all(w.alive and w.ready for w in self.workers):
            return False
        return all(_get(w.metrics_port, "/healthz")[0] == 200 for w in self.workers if w.metrics_port)

    # ------------------------------------------------------------ the end
    def _read_summary(self, w: _Worker) -> bool:
        """Read what the worker's pipe holds; False at its end (the pipe is closed then)."""
        if w.summary_r < 0:
            return False
        while True:
            try:
                chunk = os.read(w.summary_r, 65536)
            except BlockingIOError:
                return True
            if not chunk:
                os.close(w.summary_r)
                w.summary_r = -1
                return False
            w.received += chunk
            if len(chunk) < 65536:
                return True

    def _close(self) -> None:
        for w in self.workers:
            if w.alive:
                os.kill(w.pid, signal.SIGKILL)
                os.waitpid(w.pid, 0)
            w.notify.close()
            if w.summary_r >= 0:
                os.close(w.summary_r)
                w.summary_r = -1
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def summary(self) -> dict[str, Any]:
        reports = [w.report().get("summary") for w in self.workers]
        out = combine([r for r in reports if r])
        out["workers"] = self.n
        out["shard_key"] = self.shard or next((r.get("shard_key") for r in reports if r), None)
        out["uptime_s"] = round(time.monotonic() - self.started, 3)
        missing = [w.index for w, r in zip(self.workers, reports, strict=True) if not r]
        if missing:
            out["workers_without_summary"] = missing
        return out


class _Scraper:
    """The supervisor's /metrics: every worker's, with a worker label (metrics/aggregate.py)."""

    def __init__(self, sup: Supervisor):
        self.sup = sup

    def render(self) -> str:
        from .metrics.aggregate import merge

        texts: dict[int, str] = {}
        for w in self.sup.workers:
            if w.metrics_port and w.alive:
                status, body = _get(w.metrics_port, "/metrics")
                if status == 200:
                    texts[w.index] = body
        own = [
            "# HELP jenga_workers Worker processes configured, and how many answered this scrape.",
            "# TYPE jenga_workers gauge",
            f'jenga_workers{{state="configured"}} {self.sup.n}',
            f'jenga_workers{{state="scraped"}} {len(texts)}',
        ]
        return merge(texts, own)


def _get(port: int | None, path: str) -> tuple[int, str]:
    """GET a worker's loopback endpoint, bounded by SCRAPE_TIMEOUT_S; (0, "") on failure."""
    import http.client

    from .metrics.aggregate import SCRAPE_TIMEOUT_S

    if not port:
        return 0, ""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=SCRAPE_TIMEOUT_S)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return 0, ""
    finally:
        conn.close()


SUMMED = ("received", "scored", "filtered", "rejected", "alerts", "dropped", "forwarded", "exchanged",
          "sink_lost", "sink_truncated", "dead_letters_lost", "sink_spooled")  # fmt: skip


def combine(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' summaries as one: counts summed; `received` counts each event read from
    outside once (what a worker received from a peer is that peer's event, forwarded). So
    received = scored + filtered + rejected + dropped_by_reason["exchange"] (forwards that
    never reached their owner's queue), as one agent's received = scored + filtered + rejected."""
    out: dict[str, Any] = {k: sum(s.get(k, 0) or 0 for s in summaries) for k in SUMMED}
    out["received"] -= out["exchanged"]
    for key in ("dropped_by_reason", "reloads"):
        merged: dict[str, Any] = {}
        for s in summaries:
            for k, v in (s.get(key) or {}).items():
                merged[k] = merged.get(k, 0) + v
        out[key] = merged
    out["bundle_id"] = next((s.get("bundle_id") for s in summaries), None)
    out["busy_s"] = round(sum(s.get("busy_s", 0.0) for s in summaries), 6)
    out["span_s"] = max((s.get("span_s", 0.0) for s in summaries), default=0.0)
    firsts = [s["first_scored_wall"] for s in summaries if s.get("first_scored_wall")]
    out["first_scored_wall"] = min(firsts) if firsts else None
    out["fatal"] = next((s["fatal"] for s in summaries if s.get("fatal")), None)
    out["per_worker"] = [
        {k: s.get(k) for k in ("worker", "pid", "received", "scored", "rejected", "forwarded", "exchanged", "dropped")}
        for s in summaries
    ]
    return out


def _describe(status: int | None) -> str:
    if status is None:
        return "is running"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f"was killed by signal {sig} ({signal.Signals(sig).name})"
    return f"exited with status {os.WEXITSTATUS(status)}"


def _parent_death_signal() -> None:
    """Linux: a worker gets SIGTERM if the supervisor dies (killed with SIGKILL), never orphaned."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_workers(
    cfg: AgentConfig,
    config_path: str | None,
    overrides: list[str] | tuple[str, ...],
    log: Callable[[str], None],
    service: Notifier,
) -> tuple[dict[str, Any], Supervisor]:
    """Run the supervisor to the end: the combined summary, and the supervisor (its failure, error)."""
    sup = Supervisor(cfg, config_path, overrides, log=log, service=service)
    return sup.run(), sup
