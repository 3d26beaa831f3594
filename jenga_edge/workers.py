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
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec

from .actions import webhook
from .actions.base import ActionConfig
from .config import AgentConfig
from .contract.errors import ConfigError, JengaError
from .failures import FailureLog
from .sharding import check_windows, keyed_state, shard_key
from .sinks.base import SinkConfig
from .sources.base import AddressConfig
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


def check_ports(cfg: AgentConfig) -> None:
    """Every worker binds a listener's port (SO_REUSEPORT); port 0 would give each worker a
    port of its own, which no sender could find."""
    for i, src in enumerate(cfg.sources):
        if isinstance(src, AddressConfig) and src.port == 0:
            raise ConfigError(
                f"sources[{i}].port: a fixed port is needed with agent.workers > 1 (every worker binds it; "
                "port 0 would give each worker a different one)"
            )


def check_config(cfg: AgentConfig) -> str | None:
    """What the config alone says about sharding (the bundle's windows are checked by
    each worker as it builds its pipeline): the shard key its own windows and rules
    share (None: none needed). ConfigError names the key path."""
    if cfg.agent.workers == 1:
        return None
    check_ports(cfg)
    check_windows(cfg.event.windows)
    return shard_key(keyed_state(cfg.event.windows, cfg.rules), cfg.agent.shard_key)


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


class _Worker:
    """The supervisor's view of one worker."""

    def __init__(self, index: int, notify: socket.socket, notify_path: str):
        self.index, self.notify, self.notify_path = index, notify, notify_path
        self.pid = 0
        self.proc: subprocess.Popen[bytes] | None = None
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
        self._served = False  # every worker was ready once
        self._next_status = 0.0
        self._dir = ""
        self.server: Any = None

    # ------------------------------------------------------------ start
    def start(self) -> None:
        """Start the workers: their notify sockets, summary pipes and the mesh first; each
        worker is a new interpreter (`python -m jenga_edge.worker_agent SPEC`) handed its
        ends of the sockets and pipe by descriptor (spawned, not forked: the supervisor
        already has threads, numpy's and onnxruntime's, which a fork would not carry)."""
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
        config = os.path.join(self._dir, "config.json")
        with open(config, "wb") as fh:  # the config as checked here, paths resolved (the directory is 0700)
            fh.write(msgspec.json.encode(self.cfg))
        firewall_first = any(getattr(a, "ensure", False) for a in self.cfg.actions.values())
        try:
            for w in self.workers:
                if w.index == 1 and firewall_first:
                    self._wait_ready(self.workers[0])  # worker 0 creates the firewall sets alone
                self._spawn(w, mesh[w.index], config)
        finally:
            for socks in mesh.values():
                for s in socks.values():
                    s.close()
        how = f"shard key {self.shard}" if self.shard else "events shared out by listener and batch"
        self.log(f"jenga-edge: {self.n} workers (pid {', '.join(str(w.pid) for w in self.workers)}), {how}")

    def _spawn(self, w: _Worker, peers: dict[int, socket.socket], config: str) -> None:
        r, wr = os.pipe()
        spec = {
            "index": w.index,
            "workers": self.n,
            "config": config,
            "config_path": self.config_path,
            "overrides": list(self.overrides),
            "peers": {str(p): s.fileno() for p, s in peers.items()},
            "summary_fd": wr,
            "notify": w.notify_path,
            "watchdog_s": self.service.watchdog_s / 2 if self.service.watchdog_s else None,
            "supervisor": os.getpid(),
        }
        fds = [wr, *(s.fileno() for s in peers.values())]
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jenga_edge.worker_agent", json.dumps(spec)], pass_fds=fds, close_fds=True
            )
        finally:
            os.close(wr)
        w.proc, w.pid, w.summary_r = proc, proc.pid, r
        os.set_blocking(r, False)

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
        try:
            self.start()
        except BaseException:
            self._close()
            raise
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
            if w.proc is not None:
                w.proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
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
        signalled = os.WTERMSIG(w.status) if os.WIFSIGNALED(w.status) else None
        if self._stop_sent and signalled in (signal.SIGTERM, signal.SIGINT):
            return  # our stop reached it before it had taken over its signals: nothing was lost
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
        if not self._ready_sent and all(w.ready for w in self.workers):
            self._ready_sent = self._served = True
            svc.ready(self._status_line())  # a no-op outside systemd
        if not svc.enabled:
            return
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
        if self._stop_sent or not self._served or not all(w.alive for w in self.workers):
            return False  # (a reload keeps it healthy, as one agent's: the old pipeline serves meanwhile)
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
            if w.alive and w.pid:
                os.kill(w.pid, signal.SIGKILL)
                os.waitpid(w.pid, 0)
                w.status = -1
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
        self.failures = [0] * sup.n  # scrapes each worker did not answer (served by several threads)
        self._lock = threading.Lock()
        self._warn = FailureLog(sup.log).warn

    def render(self) -> str:
        from .metrics.aggregate import SCRAPE_TIMEOUT_S, merge

        texts: dict[int, str] = {}
        for w in self.sup.workers:
            if w.metrics_port and w.alive:
                status, body = _get(w.metrics_port, "/metrics")
                if status == 200:
                    texts[w.index] = body
                    continue
                with self._lock:
                    self.failures[w.index] += 1
                self._warn(
                    f"scrape:{w.index}",
                    f"metrics: worker {w.index} did not answer /metrics within {SCRAPE_TIMEOUT_S:g} s "
                    f"(status {status or 'none'}); its series are left out of this scrape "
                    "(jenga_worker_scrape_failures_total)",
                )
        own = [
            "# HELP jenga_workers Worker processes configured, and how many answered this scrape.",
            "# TYPE jenga_workers gauge",
            f'jenga_workers{{state="configured"}} {self.sup.n}',
            f'jenga_workers{{state="scraped"}} {len(texts)}',
            "# HELP jenga_worker_scrape_failures_total Scrapes a worker did not answer in time (left out).",
            "# TYPE jenga_worker_scrape_failures_total counter",
            *(f'jenga_worker_scrape_failures_total{{worker="{k}"}} {n}' for k, n in enumerate(self.failures)),
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


PER_WORKER = ("worker", "pid", "received", "scored", "rejected", "forwarded", "exchanged", "dropped",
              "busy_s", "span_s", "first_scored_wall")  # fmt: skip


def combine(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' summaries as one: counts summed; `received` counts each event read from
    outside once (what a worker received from a peer is that peer's event, forwarded). So
    received = scored + filtered + rejected + dropped_by_reason["exchange"] (forwards that
    never reached their owner's queue), as one agent's received = scored + filtered + rejected."""
    out: dict[str, Any] = {k: sum(s.get(k, 0) or 0 for s in summaries) for k in SUMMED}
    out["received"] -= out["exchanged"]
    for key in ("dropped_by_reason", "reloads", "warmup_held", "uncorroborated"):
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
    out["per_worker"] = [{k: s.get(k) for k in PER_WORKER} for s in summaries]
    return out


def _describe(status: int | None) -> str:
    if status is None:
        return "is running"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f"was killed by signal {sig} ({signal.Signals(sig).name})"
    return f"exited with status {os.WEXITSTATUS(status)}"


def summary_line(summary: dict[str, Any]) -> str:
    return json.dumps(summary)  # the workers' metrics snapshots never reach it


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
