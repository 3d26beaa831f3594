"""`jenga-edge run --workers N`: the shard key (found, refused, among_last), the stable hash
and the decoder's normalization, per-worker files and budgets, merged metrics; and the
real supervisor with 2 workers: a TCP listener shared with SO_REUSEPORT whose window
counts per key equal a single agent's (routing by key), a stdin source shared out,
READY/WATCHDOG/STOPPING and /metrics aggregated, and a worker killed with SIGKILL."""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import urllib.request
from pathlib import Path

import pytest
import yaml

from jenga_edge.config import agent_config_from_dict
from jenga_edge.contract.errors import ConfigError
from jenga_edge.contract.events import EventModel, Normalizer
from jenga_edge.decode import EventDecoder, field_column, field_reader
from jenga_edge.event_queue import Chunk, EventQueue
from jenga_edge.metrics.aggregate import merge
from jenga_edge.sharding import LOCAL, ShardReader, stable_hash
from jenga_edge.systemd import Notifier
from jenga_edge.workers import Supervisor, _Scraper, _Worker, check_config, combine, worker_config, worker_path

from .text_bundle import dns_schema, write_text_bundle

REPO = Path(__file__).resolve().parents[2]
WINDOW = {"kind": "count", "key": ["src_ip"], "window_s": 3600}


def config(raw: dict | None = None, **agent) -> dict:
    return {"agent": {"bundle": "b", **agent}, "sources": [{"type": "stdin"}], **(raw or {})}


def load(raw: dict):
    return agent_config_from_dict(raw, "agent.yaml")


# ------------------------------------------------------------------ the shard key


def test_the_shard_key_is_the_field_every_keyed_state_shares():
    raw = config(
        {
            "event": {"windows": {"a": {**WINDOW, "key": ["dest_port", "src_ip"]}, "b": WINDOW}},
            "rules": [
                {"rule": "r", "condition": {"a": {"gte": 1}}, "key": "src_ip", "cooldown_s": 60},
                {"rule": "q", "condition": {"a": {"gte": 1}}, "key": "dest_ip"},  # no cooldown: no state
            ],
        },
        workers=2,
    )
    assert check_config(load(raw)) == "src_ip"


def test_no_common_field_is_refused_naming_the_keys():
    raw = config(
        {
            "event": {"windows": {"a": WINDOW}},
            "rules": [{"rule": "r", "condition": {"a": {"gte": 1}}, "key": "dest_ip", "cooldown_s": 60}],
        },
        workers=2,
    )
    with pytest.raises(ConfigError, match=r"agent\.shard_key: no field .*event\.windows\.a\.key \[src_ip\], "
                       r"rules\[0\]\.key \[dest_ip\]"):  # fmt: skip
        check_config(load(raw))
    with pytest.raises(ConfigError, match=r"agent\.shard_key: 'dest_ip' is not in event\.windows\.a\.key"):
        check_config(load({**raw, "agent": {**raw["agent"], "shard_key": "dest_ip"}}))
    assert check_config(load({**raw, "agent": {"bundle": "b"}})) is None  # one worker: nothing to shard


def test_a_min_matches_rule_keeps_state_per_key_as_a_cooldown_does():
    """Its matches per key must all reach one worker: a rule on another key is refused, named."""
    rule = {"rule": "m", "condition": {"a": {"gte": 1}}, "key": "dest_ip", "min_matches": {"count": 2, "within_s": 60}}
    raw = config({"event": {"windows": {"a": WINDOW}}, "rules": [rule]}, workers=2)
    with pytest.raises(ConfigError, match=r"agent\.shard_key: no field .*rules\[0\]\.key \[dest_ip\]"):
        check_config(load(raw))
    assert check_config(load(config({"rules": [rule]}, workers=2))) == "dest_ip"


def test_among_last_is_refused_with_workers():
    raw = config({"event": {"windows": {"last": {"kind": "count", "key": ["src_ip"], "among_last": 100}}}}, workers=2)
    with pytest.raises(ConfigError, match=r"event\.windows\.last\.among_last: counts among the whole stream"):
        check_config(load(raw))
    assert check_config(load({**raw, "agent": {"bundle": "b"}})) is None


def test_a_listener_on_port_0_is_refused_with_workers():
    # Each worker binds the port with SO_REUSEPORT: port 0 would give each its own port.
    raw = config({"sources": [{"type": "stdin"}, {"type": "udp", "port": 0}]}, workers=2)
    with pytest.raises(ConfigError, match=r"sources\[1\]\.port: a fixed port is needed"):
        check_config(load(raw))
    assert check_config(load(config({"sources": [{"type": "udp", "port": 5140}]}, workers=2))) is None
    assert check_config(load({**raw, "agent": {"bundle": "b"}})) is None


@pytest.mark.parametrize("n", [0, 257])
def test_workers_is_bounded(n):
    with pytest.raises(ConfigError, match=r"agent\.workers"):
        load(config(workers=n))


def test_the_hash_is_stable_across_processes_and_types():
    values = ["10.0.0.1", " 10.0.0.1", 22, 22.0, "22", True, "ünï"]
    here = [stable_hash(v) for v in values]
    assert here[0] == here[1] and here[2] == here[3] == here[4]  # cooldown keys compare them alike
    code = f"from jenga_edge.sharding import stable_hash; print([stable_hash(v) for v in {values!r}])"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # Python's hash() would differ here
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, cwd=REPO)
    assert json.loads(out.stdout) == here
    assert here[0] == 654229907  # zlib.crc32(b"10.0.0.1"): the same in every run, on every machine


def test_the_routed_value_is_the_one_the_decoder_sees():
    model = EventModel(
        mapping={"src_ip": ["flow.src", "src_ip"]},
        normalize={"src_ip": Normalizer(lower=True, map={"localhost": "127.0.0.1"})},
    )
    schema = dns_schema(model)
    decoder = EventDecoder(schema, key_fields=["src_ip"], min_present=0)
    read = field_reader(decoder.model, "src_ip")
    lines = [
        b'{"flow": {"src": " LocalHost "}, "domain": "a.com"}',
        b'{"src_ip": "10.0.0.1", "domain": "a.com"}',
        b'{"flow": {"src": null}, "src_ip": "FE80::1", "domain": "a.com"}',
        b'{"src_ip": 22, "domain": "a.com"}',
        b'{"domain": "a.com"}',
    ]
    lines.append(b'{"src_ip": "10.0.0.\\u0031", "domain": "a.com"}')  # an escape: the C tier leaves it to msgspec
    decoded = decoder.decode(lines).keys["src_ip"]
    assert [read(line) for line in lines] == decoded
    assert decoded[0] == "127.0.0.1" and decoded[4] is None and decoded[5] == "10.0.0.1"
    queue = EventQueue(100)
    queue.put_chunk(Chunk(b"\n".join(lines) + b"\n", len(lines)), "test")
    buffered = queue.take(100, 0).data  # the queue's Lines: a buffer and spans, read in place
    assert field_column(decoder.model, "src_ip")(buffered) == decoded == field_column(decoder.model, "src_ip")(lines)
    shard = ShardReader(decoder.model, "src_ip", 4)
    assert shard.owners(buffered) == [stable_hash(v) % 4 if v is not None else LOCAL for v in decoded]
    assert shard.owners([b"{not json", lines[4], b'{"src_ip": {"a": 1}}']) == [LOCAL] * 3  # stays, rejected there


def test_a_workers_own_lines_and_its_inbox_are_scored_in_one_batch(monkeypatch):
    """Routing leaves about half of a batch local; what peers routed here joins it, up to
    max_batch, instead of making a second half-size batch (each pays the graph call and an
    fsync request). Lines, partial flags, origins and counts survive the merge."""
    from jenga_edge import worker_agent
    from jenga_edge.event_queue import PARTIAL, Batch

    scored: list = []
    monkeypatch.setattr(worker_agent.Agent, "process_safely", lambda self, b: scored.append(b))
    inbox = EventQueue(100)
    inbox.put_lines([b"p1", b"p2", b"p3"], "exchange:w1:tcp", [0, PARTIAL, 0])
    worker = object.__new__(worker_agent.WorkerAgent)  # only what process_safely reads
    worker.inbox, worker.counts = inbox, collections.Counter()
    worker.cfg = types.SimpleNamespace(batching=types.SimpleNamespace(max_batch=4))  # type: ignore[assignment]
    worker._route = lambda b: b  # type: ignore[method-assign]  # every line of the sources' batch stays here
    worker.process_safely(Batch([b"a", b"b"], None, [("tcp:x", 2)]))
    assert len(scored) == 1 and list(scored[0].data) == [b"a", b"b", b"p1", b"p2"]
    assert scored[0].origins == [("tcp:x", 2), ("exchange:w1:tcp", 2)]
    assert scored[0].oversize_flags() == [0, 0, 0, PARTIAL] and worker.counts["exchanged"] == 2
    assert inbox.depth() == 1  # max_batch reached: the rest waits for the next batch


def test_each_worker_has_its_files_and_its_share_of_the_budgets(tmp_path):
    raw = config(
        {
            "sinks": {
                "alerts": {"type": "jsonl", "path": "out/alerts.jsonl"},
                "db": {"type": "sqlite", "path": "a.db"},
            },
            "dead_letter": {"path": "dead"},
            "event": {"windows": {"a": WINDOW}, "snapshot": "win.snap"},
            "rules": [{"rule": "r", "condition": {"a": {"gte": 1}}, "max_alerts_per_min": 5}],
            "rate_limit": {"max_actions": 7},
            "sources": [{"type": "stdin"}, {"type": "tcp", "port": 1}],
        },
        workers=2,
    )
    cfg = agent_config_from_dict(raw, "agent.yaml", tmp_path)
    w0, w1 = worker_config(cfg, 0, 2), worker_config(cfg, 1, 2)
    assert w1.sinks["alerts"].path == str(tmp_path / "out" / "alerts.w1.jsonl")  # type: ignore[attr-defined]
    assert w1.sinks["db"].path == str(tmp_path / "a.w1.db")  # type: ignore[attr-defined]
    assert w0.dead_letter.path == str(tmp_path / "dead.w0") and w1.event.snapshot == str(tmp_path / "win.w1of2.snap")
    assert [s.kind for s in w0.sources] == ["stdin", "tcp"] and [s.kind for s in w1.sources] == ["tcp"]
    assert w0.rules[0].max_alerts_per_min == 3 and w0.rate_limit.max_actions == 4  # ceil(x / 2)
    assert cfg.rules[0].max_alerts_per_min == 5  # the config itself is left alone
    assert worker_path("/x/.state", 3) == "/x/.state.w3"


def test_metrics_are_merged_with_a_worker_label():
    w0 = '# HELP a_total A.\n# TYPE a_total counter\na_total{source="tcp"} 3\n# TYPE up gauge\nup 1\n'
    w1 = '# HELP a_total A.\n# TYPE a_total counter\na_total{source="tcp"} 4\n# TYPE up gauge\nup 1\n'
    text = merge({0: w0, 1: w1})
    assert text.count("# TYPE a_total counter") == 1
    lines = text.splitlines()
    i = lines.index('a_total{worker="0",source="tcp"} 3')
    assert lines[i + 1] == 'a_total{worker="1",source="tcp"} 4'  # a family's samples together
    assert 'up{worker="1"} 1' in lines


def test_a_worker_that_does_not_answer_a_scrape_is_counted_and_logged():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: the scrape fails at once
    said: list[str] = []
    workers = [types.SimpleNamespace(index=k, metrics_port=port, alive=True) for k in range(2)]
    scraper = _Scraper(types.SimpleNamespace(n=2, workers=workers, log=said.append))  # type: ignore[arg-type]
    scraper.render()
    lines = scraper.render().splitlines()
    assert 'jenga_worker_scrape_failures_total{worker="1"} 2' in lines
    assert 'jenga_workers{state="scraped"} 0' in lines
    assert len(said) == 2 and "worker 0 did not answer /metrics" in said[0]  # once per worker, rate-limited


def test_the_combined_summary_counts_each_event_read_once():
    a = {"received": 10, "scored": 4, "forwarded": 6, "exchanged": 0, "dropped": 0, "dropped_by_reason": {}}
    b = {"received": 6, "scored": 5, "forwarded": 0, "exchanged": 6, "dropped": 1, "dropped_by_reason": {"exchange": 1}}
    out = combine([a, b])
    assert out["received"] == 10 == out["scored"] + out["dropped_by_reason"]["exchange"]


def test_the_supervisor_says_ready_once_all_are_and_pings_only_when_all_pinged(tmp_path):
    fake = FakeNotify(tmp_path)
    sup = Supervisor(load(config(workers=2)), service=Notifier(fake.path, watchdog_s=1.0))
    sup.workers = [_Worker(k, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM), "") for k in range(2)]
    for w in sup.workers:
        w.pid = os.getpid()  # alive: no status yet
    sup._on_notify(
        sup.workers[0], "READY=1\nSTATUS=serving bundle b, sources tcp; received 5, scored 4, alerts 1, rejected 1"
    )
    sup._notify_upstream()
    assert not sup.healthy()  # worker 1 is not ready yet
    sup._on_notify(
        sup.workers[1], "READY=1\nSTATUS=serving bundle b, sources tcp; received 7, scored 7, alerts 0, rejected 0"
    )
    sup._notify_upstream()
    ready = fake.wait_for("READY", timeout=2)
    assert ready["STATUS"] == "serving with 2 workers; received 12, scored 11, alerts 1, rejected 1"
    assert sup.healthy()
    sup._on_notify(sup.workers[0], "WATCHDOG=1")
    sup._notify_upstream()
    sup._on_notify(sup.workers[0], "WATCHDOG=1")  # worker 1 is stuck: no ping goes up
    sup._notify_upstream()
    with pytest.raises(AssertionError):
        fake.wait_for("WATCHDOG", timeout=0.3)
    sup._on_notify(sup.workers[1], "WATCHDOG=1")
    sup._notify_upstream()
    assert fake.wait_for("WATCHDOG", timeout=2)["WATCHDOG"] == "1"
    for w in sup.workers:
        w.notify.close()
    fake.sock.close()
    quiet = Supervisor(load(config(workers=2)))  # not under systemd: /healthz still follows the workers
    quiet.workers = sup.workers
    quiet._notify_upstream()
    assert quiet.healthy()


# ------------------------------------------------------------------ the real supervisor


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_text_bundle(tmp_path_factory.mktemp("workers") / "bundle")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def agent_yaml(tmp: Path, bundle: Path, sources: list, windows: bool = True, **extra) -> Path:
    event: dict = {"keys": ["src_ip"], "fields": ["id"]}
    rules = [{"rule": "all", "condition": {"qlen": {"gte": 0}}}]
    if windows:
        event.update(time="time", windows={"n_ip": WINDOW}, fields=["id", "n_ip"])
        rules = [{"rule": "all", "condition": {"n_ip": {"gte": 1}}}]
    cfg = {
        "agent": {"id": "w", "bundle": str(bundle)},
        "sources": sources,
        "batching": {"max_batch": 64, "max_wait_ms": 5, "drain_s": 3},
        "event": event,
        "rules": rules,
        "sinks": {"jsonl": {"path": str(tmp / "alerts.jsonl"), "fsync": False}},
        "dead_letter": {"path": str(tmp / "dead.jsonl")},
        "metrics": {"stats_interval_s": 0},
        **extra,
    }
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def event_lines(n: int, keys: int) -> list[bytes]:
    return [
        json.dumps(
            {"src_ip": f"10.1.{i % keys}.7", "qlen": i % 9, "rrtype": "A", "domain": "ex.com", "time": 1.7e9, "id": i}
        ).encode()
        for i in range(n)
    ]


def alerts(tmp: Path) -> list[dict]:
    out = []
    for p in sorted(tmp.glob("alerts*.jsonl")):
        # whole lines only: polled while the workers write, a file may end mid-line
        out += [json.loads(x) for x in p.read_text().split("\n")[:-1]]
    return out


def wait_for_alerts(tmp: Path, n: int, timeout: float = 60.0) -> None:
    """Until `n` alerts are written (or `timeout`: the test's assertions then say what is missing)."""
    deadline = time.monotonic() + timeout
    while len(alerts(tmp)) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def counts_by_key(records: list[dict]) -> dict[str, list[int]]:
    by: dict[str, list[int]] = collections.defaultdict(list)
    for a in records:
        by[a["src_ip"]].append(a["fields"]["n_ip"])
    return {k: sorted(v) for k, v in by.items()}


class Proc:
    """`jenga-edge run` as a user starts it, stderr collected in a thread."""

    def __init__(self, config: Path, *args: str, env: dict | None = None, stdin=subprocess.DEVNULL):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(config), *args],
            stdin=stdin,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            cwd=REPO,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def wait_for(self, text: str, count: int = 1, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            hits = [ln for ln in self.lines if text in ln]
            if len(hits) >= count:
                return hits[-1]
            time.sleep(0.02)
        raise AssertionError(f"never logged {text!r}: {self.lines[-10:]}")

    def finish(self, timeout: float = 60.0) -> tuple[int, dict]:
        rc = self.proc.wait(timeout)
        self._t.join(5)
        summary = next((json.loads(ln) for ln in reversed(self.lines) if ln.startswith("{")), {})
        return rc, summary

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class FakeNotify:
    def __init__(self, tmp: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.path = str(tmp / "notify.sock")
        self.sock.bind(self.path)
        self.got: list[dict[str, str]] = []

    def wait_for(self, key: str, timeout: float = 60.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536).decode()
            except TimeoutError:
                break
            msg = dict(line.split("=", 1) for line in data.split("\n"))
            self.got.append(msg)
            if key in msg:
                return msg
        raise AssertionError(f"no {key}: {self.got[-5:]}")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


@pytest.mark.slow
def test_two_workers_on_one_tcp_port_keep_each_keys_windows_whole(bundle, tmp_path):
    port, mport = free_port(), free_port()
    # the last 8: each connection's last bytes, without a newline (PARTIAL, yet whole events)
    lines = event_lines(3008, keys=60)
    one = tmp_path / "one"
    one.mkdir()
    cfg1 = agent_yaml(one, bundle, [{"type": "stdin"}])
    data = b"\n".join(lines) + b"\n"
    single = subprocess.run([sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(cfg1)], input=data,
                            capture_output=True, timeout=120, cwd=REPO)  # fmt: skip
    assert single.returncode == 0, single.stderr[-2000:]
    expected = counts_by_key(alerts(one))
    assert len(expected) == 60 and sorted(map(len, expected.values())) == [50] * 52 + [51] * 8

    two = tmp_path / "two"
    two.mkdir()
    metrics = {"enabled": True, "host": "127.0.0.1", "port": mport, "stats_interval_s": 0}
    cfg2 = agent_yaml(two, bundle, [{"type": "tcp", "port": port, "max_connections_per_peer": 64}], metrics=metrics)
    notify = FakeNotify(tmp_path)
    proc = Proc(cfg2, "--workers", "2", env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "600000"})
    try:
        ready = notify.wait_for("READY")
        assert ready["STATUS"].startswith("serving with 2 workers")
        assert notify.wait_for("WATCHDOG")["WATCHDOG"] == "1"  # both workers' loops turn
        conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(8)]
        for i, c in enumerate(conns):
            c.sendall(b"".join(x + b"\n" for x in lines[i:3000:8]) + lines[3000 + i])
            c.close()
        wait_for_alerts(two, len(lines))
        status, text = get(f"http://127.0.0.1:{mport}/metrics")
        assert status == 200 and 'jenga_events_received_total{worker="0",source="tcp"}' in text
        assert 'jenga_up{worker="1"} 1' in text and 'jenga_workers{state="scraped"} 2' in text
        assert get(f"http://127.0.0.1:{mport}/healthz")[0] == 200
        proc.proc.send_signal(signal.SIGTERM)
        assert notify.wait_for("STOPPING")["STOPPING"] == "1"
        rc, summary = proc.finish()
    finally:
        proc.kill()
        notify.sock.close()
    assert rc == 0, proc.lines[-10:]
    assert counts_by_key(alerts(two)) == expected  # every key's windows lived in one worker
    assert summary["received"] == len(lines) == summary["scored"] and summary["dropped"] == 0
    assert summary["forwarded"] == summary["exchanged"] > 0  # routed by key, all delivered
    assert sum(w["received"] - w["forwarded"] - w["scored"] - w["rejected"] for w in summary["per_worker"]) == 0
    assert (two / "alerts.w0.jsonl").exists() and (two / "alerts.w1.jsonl").exists()
    assert (two / "dead.w0.jsonl").exists() and not (two / "alerts.jsonl").exists()


@pytest.mark.slow
def test_two_workers_share_a_udp_port_and_route_by_key(bundle, tmp_path):
    port = free_port()
    cfg = agent_yaml(tmp_path, bundle, [{"type": "udp", "port": port}])
    proc = Proc(cfg, "--workers", "2")
    lines = event_lines(1200, keys=30)
    try:
        proc.wait_for("tasks dga", count=2)
        senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(16)]
        for i, line in enumerate(lines):  # 16 source ports: the kernel spreads them over both sockets
            senders[i % 16].sendto(line, ("127.0.0.1", port))
            if i % 100 == 99:
                time.sleep(0.01)  # no burst past the receive buffers
        for s in senders:
            s.close()
        wait_for_alerts(tmp_path, len(lines))
        proc.proc.send_signal(signal.SIGTERM)
        rc, summary = proc.finish()
    finally:
        proc.kill()
    assert rc == 0 and summary["received"] == len(lines) == summary["scored"], summary
    assert counts_by_key(alerts(tmp_path)) == {f"10.1.{k}.7": [float(i) for i in range(1, 41)] for k in range(30)}
    # both sockets got datagrams (all 16 source ports hashed to one socket: 1 in 32768)
    assert all(w["received"] - w["exchanged"] > 0 for w in summary["per_worker"])


@pytest.mark.slow
def test_a_reload_that_would_change_the_shard_key_is_refused_and_keys_stay_whole(bundle, tmp_path):
    port = free_port()
    cfg = agent_yaml(tmp_path, bundle, [{"type": "tcp", "port": port}])
    proc = Proc(cfg, "--workers", "2")
    lines = event_lines(600, keys=20)
    try:
        proc.wait_for("tasks dga", count=2)
        raw = yaml.safe_load(cfg.read_text())
        raw["event"]["windows"]["n_ip"]["key"] = ["qlen"]  # would route by qlen: src_ip's counts would split
        cfg.write_text(yaml.safe_dump(raw))
        proc.proc.send_signal(signal.SIGHUP)  # the supervisor forwards it to both workers
        proc.wait_for("the shard key would change from", count=2)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(b"".join(x + b"\n" for x in lines))
        wait_for_alerts(tmp_path, len(lines))
        proc.proc.send_signal(signal.SIGTERM)
        rc, summary = proc.finish()
    finally:
        proc.kill()
    assert rc == 0 and summary["scored"] == len(lines), summary
    refused = [ln for ln in proc.lines if "reload failed" in ln]
    assert len(refused) == 2 and all("takes effect on restart" in ln for ln in refused)
    # still windows keyed by src_ip, each key's in one worker: 30 events per address, counted 1..30
    assert counts_by_key(alerts(tmp_path)) == {f"10.1.{k}.7": [float(i) for i in range(1, 31)] for k in range(20)}


@pytest.mark.slow
def test_a_stdin_source_is_shared_out_and_ends_both_workers(bundle, tmp_path):
    cfg = agent_yaml(tmp_path, bundle, [{"type": "stdin"}], windows=False)
    lines = [*event_lines(2000, keys=5), b"{broken"]
    out = subprocess.run([sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(cfg), "--workers", "2"],
                         input=b"\n".join(lines) + b"\n", capture_output=True, timeout=120, cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stderr.decode().strip().splitlines()[-1])
    assert summary["received"] == len(lines) == summary["scored"] + summary["rejected"] and summary["dropped"] == 0
    assert all(w["scored"] > 0 for w in summary["per_worker"])  # worker 1 got batches from worker 0's reader
    assert summary["per_worker"][1]["forwarded"] == 0 and len(alerts(tmp_path)) == summary["alerts"] == 2000


@pytest.mark.slow
def test_a_worker_killed_stops_the_supervisor_and_its_peer(bundle, tmp_path):
    cfg = agent_yaml(tmp_path, bundle, [{"type": "tcp", "port": free_port()}])
    proc = Proc(cfg, "--workers", "2")
    try:
        started = proc.wait_for("2 workers (pid")
        pids = [int(p) for p in started.split("(pid ")[1].split(")")[0].split(", ")]
        proc.wait_for("tasks dga", count=2)
        os.kill(pids[1], signal.SIGKILL)
        rc, _ = proc.finish()
    finally:
        proc.kill()
    assert rc == 1
    assert any(f"worker 1 (pid {pids[1]}) was killed by signal 9 (SIGKILL)" in ln for ln in proc.lines)
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)  # the other worker ended too (and was reaped)


@pytest.mark.slow
def test_workers_out_of_range_is_one_line(tmp_path, bundle):
    cfg = agent_yaml(tmp_path, bundle, [{"type": "stdin"}])
    out = subprocess.run([sys.executable, "-m", "jenga_edge.cli", "validate", "--config", str(cfg), "--workers", "0"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip
    assert out.returncode == 2 and "--workers" in out.stderr
    out = subprocess.run([sys.executable, "-m", "jenga_edge.cli", "validate", "--config", str(cfg), "--workers", "2"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "workers: 2, shard key src_ip" in out.stdout and "alerts.w1.jsonl" in out.stdout
