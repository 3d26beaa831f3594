"""One worker of `jenga-edge run --workers N` (workers.py has the whole picture): today's
Agent, routing what its sources read to the worker that owns each line's key and
scoring what its peers route to it. The supervisor starts it as
`python -m jenga_edge.worker_agent SPEC` (SPEC: JSON with its index, the config
file the supervisor checked, its socket and pipe descriptors, its notify socket).
"""

from __future__ import annotations

import glob
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from .agent import Agent, Pipeline
from .config import AgentConfig, config_type
from .contract.errors import ConfigError, JengaError
from .event_queue import OVERSIZE, PARTIAL, Batch, EventQueue, Lines, Segment
from .exchange import Link, MergedQueue, is_inbox_batch, message
from .sharding import LOCAL, ShardReader, check_computed, check_windows, keyed_state, shard_key
from .systemd import JournalLog, Notifier, PrefixedStream
from .workers import METRICS_FIELD, SHARED_KINDS, worker_config, worker_path

if TYPE_CHECKING:
    import numpy.typing as npt


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
        self._say_other_snapshots(cfg.event.snapshot)

    def _say_other_snapshots(self, configured: str) -> None:
        """A snapshot of another worker count (or of one agent) is not loaded: its keys were
        sharded differently. Said, when there is one and none of this count."""
        own = self.cfg.event.snapshot
        if not own or os.path.exists(own):
            return
        pattern = worker_path(glob.escape(configured), self.index, f"w{self.index}of*")
        others = [configured] if os.path.exists(configured) else sorted(glob.glob(pattern))
        if others:
            self.log(f"window snapshot {others[0]} was taken with another worker count: not loaded by "
                     f"{self.workers} workers (keys are sharded by worker count); windows start empty")  # fmt: skip

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
        # What peers routed here is scored with this worker's own lines, up to max_batch: scored
        # apart, each half-size batch paid the graph call and an fsync request, and two keyed
        # workers spent twice one worker's CPU (README, "Scale-out across cores: measured").
        room = self.cfg.batching.max_batch - len(kept)
        if room > 0 and self.inbox.depth():
            extra = self.inbox.take(room, 0.0)
            if extra:
                self.counts["exchanged"] += len(extra)
                kept = _concat(kept, extra) if kept else extra
        if kept:
            super().process_safely(kept)

    def _route(self, batch: Batch) -> Batch:
        """Send the lines other workers own to them; the rest (this worker's) as a batch."""
        owners = self.router.owners(batch.data) if self.router is not None else self._spread(batch)
        if owners is None:
            return batch
        if batch.oversize is not None:  # flagged lines (rare): line by line
            return self._route_flagged(batch, owners)
        own = np.asarray(owners, dtype=np.int64)
        local = (own == LOCAL) | (own == self.index)
        if local.all():
            return batch
        # per line: the index of its origin in batch.origins
        which = np.repeat(np.arange(len(batch.origins)), [c for _, c in batch.origins])
        for owner in np.unique(own[~local]).tolist():
            for k in np.unique(which[own == owner]).tolist():
                lines = _take(batch.data, (own == owner) & (which == k))
                self._forward(owner, batch.origins[k][0], False, lines)
        return _subset(batch, local, which)

    def _route_flagged(self, batch: Batch, owners: list[int]) -> Batch:
        """_route for a batch with oversize or partial lines: an oversize line stays (it is
        rejected here as anywhere), a partial one travels as such."""
        me, flags = self.index, batch.oversize
        assert flags is not None
        origins = [o for o, c in batch.origins for _ in range(c)]
        out: dict[tuple[int, str, bool], list[bytes]] = {}
        keep: list[bytes] = []
        keep_flags: list[int] = []
        keep_origins: list[tuple[str, int]] = []
        for i, line in enumerate(batch.data):
            owner, flag = owners[i], flags[i]
            if owner in (LOCAL, me) or flag == OVERSIZE:
                keep.append(line)
                keep_flags.append(flag)
                if keep_origins and keep_origins[-1][0] == origins[i]:
                    keep_origins[-1] = (origins[i], keep_origins[-1][1] + 1)
                else:
                    keep_origins.append((origins[i], 1))
            else:
                out.setdefault((owner, origins[i], flag == PARTIAL), []).append(line)
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


def _take(lines: Lines, mask: npt.NDArray[np.bool_]) -> list[bytes]:
    """The lines where `mask` holds, as bytes (what a message carries)."""
    out: list[bytes] = []
    r0 = 0
    for seg in lines.segments:
        n = len(seg) if isinstance(seg, list) else len(seg[1])
        rows = np.flatnonzero(mask[r0 : r0 + n])
        if isinstance(seg, list):
            out += [seg[i] for i in rows.tolist()]
        else:
            buf = seg[0]
            out += [buf[a:b] for a, b in seg[1][rows].tolist()]
        r0 += n
    return out


def _concat(a: Batch, b: Batch) -> Batch:
    """`a`'s lines then `b`'s, in one batch (segments, flags and origins kept, nothing copied)."""
    flags = None
    if a.oversize is not None or b.oversize is not None:
        flags = (a.oversize or [0] * len(a)) + (b.oversize or [0] * len(b))
    return Batch(Lines(a.data.segments + b.data.segments), flags, a.origins + b.origins)


def _subset(batch: Batch, keep: npt.NDArray[np.bool_], which: npt.NDArray[np.int64]) -> Batch:
    """The lines of `batch` where `keep` holds, without copying them: a buffer segment keeps
    its buffer and the kept lines' spans (the decoder's C tier reads them in place)."""
    segments: list[Segment] = []
    r0 = 0
    for seg in batch.data.segments:
        n = len(seg) if isinstance(seg, list) else len(seg[1])
        rows = np.flatnonzero(keep[r0 : r0 + n])
        if len(rows):
            segments.append([seg[i] for i in rows.tolist()] if isinstance(seg, list) else (seg[0], seg[1][rows]))
        r0 += n
    kept = which[keep]
    if not len(kept):
        return Batch([])
    starts = np.flatnonzero(np.diff(kept, prepend=-1))  # runs of one origin
    counts = np.diff(np.append(starts, len(kept)))
    origins = [(batch.origins[k][0], int(c)) for k, c in zip(kept[starts].tolist(), counts.tolist(), strict=True)]
    return Batch(Lines(segments), None, origins)


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


def _parent_death_signal(supervisor: int) -> None:
    """Linux: a worker gets SIGTERM if the supervisor dies (killed with SIGKILL), never
    orphaned; if it died before this was set, the worker stops at once."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != supervisor:
        sys.exit(1)


def main(spec_text: str) -> None:
    """The worker's life: build, serve, send the summary (or the error) to the supervisor."""
    spec = json.loads(spec_text)
    index, n = int(spec["index"]), int(spec["workers"])
    _parent_death_signal(int(spec["supervisor"]))
    journal = JournalLog(sys.stderr)
    if journal.journal:
        sys.stderr = PrefixedStream(sys.stderr)
    code, report = 1, dict[str, Any]()
    try:
        cfg = msgspec.json.decode(Path(spec["config"]).read_bytes(), type=config_type())
        peers = {int(p): socket.socket(fileno=fd) for p, fd in spec["peers"].items()}
        notifier = Notifier(spec["notify"], spec["watchdog_s"])
        agent = WorkerAgent(cfg, index, n, peers, spec["config_path"], spec["overrides"],
                            log=_WorkerLog(journal, index), service=notifier)  # fmt: skip
        agent.install_signal_handlers()
        summary = agent.run()
        report = {"summary": {k: v for k, v in summary.items() if k != "metrics"}}
        code = 2 if agent.fatal is not None else 0
    except JengaError as exc:
        report, code = {"error": str(exc), "exit_code": exc.exit_code}, exc.exit_code
    except Exception as exc:  # noqa: BLE001 - a worker reports and exits, whatever happened
        import traceback

        traceback.print_exc()
        report = {"error": f"worker {index}: {type(exc).__name__}: {exc}", "exit_code": 1}
    data = memoryview(json.dumps(report, default=str).encode())
    fd = int(spec["summary_fd"])
    while data:
        data = data[os.write(fd, data) :]
    os.close(fd)
    sys.stderr.flush()
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1])
