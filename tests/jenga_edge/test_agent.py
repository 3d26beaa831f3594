"""The agent end to end: the real CLI in a subprocess, real sockets on
loopback, real files, real signals."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from jenga_edge import __version__
from jenga_edge.cli import main as edge_cli
from jenga_edge.event_queue import Batch
from trainer.synthetic import generate

REPO = Path(__file__).resolve().parents[2]


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def events(n: int, seed: int = 3) -> list[bytes]:
    out = []
    for r in generate("network", n, seed=seed):
        r = dict(r)
        r["dest_port"], r["dest_ip"] = r.pop("port"), r.pop("dst_ip")
        out.append(json.dumps(r).encode())
    return out


def malicious_events(n: int, src_ip: str, seed: int = 5) -> list[bytes]:
    """The malicious ones among `events(n)`, all from `src_ip`."""
    out = []
    for e in events(n, seed=seed):
        d = json.loads(e)
        if d["label"] == "malicious":
            d["src_ip"] = src_ip
            out.append(json.dumps(d).encode())
    return out


MALFORMED = [
    b"{not json",  # bad_json
    b"[1, 2, 3]",  # not_object
    b'{"packet_size": "huge", "dest_port": 80}',  # wrong_type
    b'{"duration": "NaN", "dest_port": 80}',  # non_finite
    b'{"bytes_sent": 1e400}',  # non_finite
    b'{"protocol": {"x": 1}}',  # wrong_type
    b'"just a string"',  # not_object
    b"x" * 5000,  # oversize (max_line_bytes 4096)
    b'{"unrelated": 1}',  # too_sparse: none of the schema's fields, not imputed into a verdict
]
MALFORMED_REASONS = {"bad_json": 1, "not_object": 2, "wrong_type": 2, "non_finite": 2, "oversize": 1, "too_sparse": 1}
UNSEEN = [
    b'{"dest_port": 31337, "protocol": "sctp", "packet_size": 100}',  # unseen categories, missing fields: imputed
]


def batch(lines: list[bytes], origin: str = "test") -> Batch:
    """Lines as the queue hands them to the agent."""
    return Batch(list(lines), None, [(origin, len(lines))])


def write_config(tmp: Path, bundle: Path, sources: list, metrics_port: int | None = None, **extra) -> Path:
    cfg = {
        "agent": {"id": "test-agent", "bundle": str(bundle)},
        "sources": sources,
        "batching": {"max_batch": 64, "max_wait_ms": 5, "max_line_bytes": 4096},
        "event": {"keys": ["src_ip", "dest_ip", "dest_port"], "mapping": {"port": "dest_port"}},
        "rules": [{"rule": "threat", "task": "threat", "priority": "error", "actions": ["alert"]}],
        # Backups enough that no rotated file is deleted within a test (read_jsonl reads them all).
        "sinks": {"jsonl": {"path": str(tmp / "alerts.jsonl"), "backups": 1000}},
        "dead_letter": {"path": str(tmp / "dead.jsonl"), "backups": 1000},
        "metrics": {"stats_interval_s": 0},
    }
    if metrics_port is not None:
        cfg["metrics"] = {"enabled": True, "host": "127.0.0.1", "port": metrics_port, "stats_interval_s": 0}
    for k, v in extra.items():
        cfg[k] = v
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class AgentProc:
    """The agent as a user runs it, with stderr collected in a thread."""

    def __init__(self, config: Path, stdin=subprocess.DEVNULL):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(config)],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
        )
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 30.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(text in ln for ln in self.lines) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"agent never logged {text!r}; stderr: {self.lines[-10:]}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 30.0) -> dict:
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self._t.join(5)
        assert rc == 0, self.lines[-10:]
        return json.loads(self.lines[-1])


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSONL sink, oldest first, across its rotated files (PATH.N ... PATH.1, PATH):
    a fast machine fills the 64 MiB rotation size within a load test."""
    rotated = sorted(path.parent.glob(path.name + ".*"), key=lambda p: -int(p.suffix[1:]))
    files = [p for p in [*rotated, path] if p.exists()]
    return [json.loads(x) for p in files for x in p.read_text().splitlines()]


def wait_until(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def run_to_eof(cfg: Path, stdin: Path, timeout: float = 60) -> dict:
    """`jenga-edge run` with a file on stdin, to its end: the summary line it exits with (status 0)."""
    with open(stdin, "rb") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(cfg)],
            stdin=fh,
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=timeout,
        )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stderr.strip().splitlines()[-1])


def check_accounting(summary: dict, tmp: Path) -> None:
    assert summary["received"] == summary["scored"] + summary["filtered"] + summary["rejected"]
    assert len(read_jsonl(tmp / "dead.jsonl")) == summary["rejected"]
    assert sum(r["event_type"] == "alert" for r in read_jsonl(tmp / "alerts.jsonl")) == summary["alerts"]


def test_tcp_and_udp_on_loopback_with_a_malformed_corpus(network_bundle, tmp_path):
    tport, uport, mport = free_port(), free_port(socket.SOCK_DGRAM), free_port()
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "tcp", "host": "127.0.0.1", "port": tport}, {"type": "udp", "host": "127.0.0.1", "port": uport}],
        metrics_port=mport,
    )
    agent = AgentProc(cfg)
    agent.wait_for(f"jenga-edge {__version__}")
    good = events(300)
    with socket.create_connection(("127.0.0.1", tport)) as s:
        s.sendall(b"\n".join(good + MALFORMED + UNSEEN) + b"\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for e in good[:50]:
            u.sendto(e + b"\n", ("127.0.0.1", uport))
            time.sleep(0.001)
    total = len(good) + len(MALFORMED) + len(UNSEEN) + 50
    # Stop only once everything sent has been read: a SIGTERM drops what is
    # still in the kernel's socket buffers (it was never accepted).
    assert wait_until(lambda: _received(mport) >= total, timeout=30)
    summary = agent.stop()
    assert summary["received"] + summary["dropped"] == total
    assert summary["dropped"] == 0
    assert summary["rejected"] == len(MALFORMED)
    assert summary["scored"] == len(good) + 50 + len(UNSEEN)
    check_accounting(summary, tmp_path)
    reasons = {}
    for d in read_jsonl(tmp_path / "dead.jsonl"):
        reasons[d["reason"]] = reasons.get(d["reason"], 0) + 1
        assert d["source"] == "tcp" or d["source"].startswith("tcp:")
        assert d["line"] and "timestamp" in d
    assert reasons == MALFORMED_REASONS
    alerts = read_jsonl(tmp_path / "alerts.jsonl")
    assert alerts, "generated data holds attacks: some must alert"
    a = alerts[0]
    assert {
        "timestamp",
        "event_type",
        "agent",
        "rule",
        "priority",
        "task",
        "score",
        "threshold",
        "model",
        "source",
        "actions",
    } <= set(a)
    assert a["score"] >= a["threshold"] and a["agent"]["id"] == "test-agent"
    assert a["model"]["bundle_id"] == network_bundle[1].bundle_id


def test_file_source_survives_rotation_and_truncation(network_bundle, tmp_path):
    log = tmp_path / "flows.jsonl"
    log.write_bytes(b"")
    mport = free_port()
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "file", "path": str(log), "start_at": "beginning", "poll_interval_s": 0.05, "rotate_wait_s": 0.3}],
        metrics_port=mport,
    )
    agent = AgentProc(cfg)
    agent.wait_for(f"jenga-edge {__version__}")
    batch = events(90, seed=8)
    with open(log, "ab") as fh:
        fh.write(b"\n".join(batch[:30]) + b"\n")
    assert wait_until(lambda: _received(mport) >= 30)
    log.rename(tmp_path / "flows.jsonl.1")  # rotation
    with open(log, "wb") as fh:
        fh.write(b"\n".join(batch[30:60]) + b"\n")
    assert wait_until(lambda: _received(mport) >= 60)
    with open(log, "r+b") as fh:  # truncation (copytruncate)
        fh.truncate(0)
    time.sleep(0.3)  # a writer appends after the truncation; tail -F sees the size drop first
    with open(log, "ab") as fh:
        fh.write(b"\n".join(batch[60:]) + b"\n")
    assert wait_until(lambda: _received(mport) >= 90)
    summary = agent.stop()
    assert summary["received"] == 90 and summary["scored"] == 90
    check_accounting(summary, tmp_path)


def _export_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_sighup_reloads_a_good_bundle_and_refuses_a_tampered_one(network_bundle, trained_network, tmp_path):
    from export.bundle_writer import ExportOptions, export_bundle

    live = _export_copy(network_bundle[0], tmp_path / "live")
    other = tmp_path / "other"
    export_bundle(trained_network.model_dir, other, ExportOptions(tasks=["threat"]), log=lambda s: None)
    port, mport = free_port(), free_port()
    cfg = write_config(tmp_path, live, [{"type": "tcp", "host": "127.0.0.1", "port": port}], metrics_port=mport)
    agent = AgentProc(cfg)
    agent.wait_for(f"jenga-edge {__version__}")
    send = lambda evs: socket.create_connection(("127.0.0.1", port)).sendall(b"\n".join(evs) + b"\n")  # noqa: E731

    # A tampered bundle: one byte of a graph changed. The reload is refused.
    raw = bytearray((live / "threat.onnx").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (live / "threat.onnx").write_bytes(bytes(raw))
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_for("reload failed")
    assert any("sha256 mismatch" in ln for ln in agent.lines)
    send(events(40, seed=11))  # the old pipeline keeps serving
    assert wait_until(lambda: _received(mport) >= 40)

    # A good bundle (another export): the reload goes through.
    shutil.rmtree(live)
    shutil.copytree(other, live)
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_for("reloaded: bundle")
    send(events(40, seed=12))
    assert wait_until(lambda: _received(mport) >= 80)
    summary = agent.stop()
    assert summary["scored"] == 80
    assert summary["bundle_id"] == json.loads((other / "manifest.json").read_text())["bundle_id"]
    assert summary["reloads"] == {"ok": 1, "failed": 1}
    check_accounting(summary, tmp_path)


def test_sigterm_under_load_loses_no_accepted_event(network_bundle, tmp_path):
    port = free_port()
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "tcp", "host": "127.0.0.1", "port": port}],
        batching={"max_batch": 256, "max_wait_ms": 5, "queue_size": 2048, "max_line_bytes": 4096},
        # Rotating every ~1 MB: shutdown also meets a rotation in progress, and read_jsonl reads them all.
        sinks={"jsonl": {"path": str(tmp_path / "alerts.jsonl"), "backups": 1000, "max_bytes": 1_000_000}},
    )
    agent = AgentProc(cfg)
    agent.wait_for(f"jenga-edge {__version__}")
    payload = b"\n".join(events(2000, seed=21)) + b"\n"
    sent = {"n": 0}
    stop = threading.Event()

    def pump():
        try:
            with socket.create_connection(("127.0.0.1", port)) as s:
                while not stop.is_set():
                    s.sendall(payload)
                    sent["n"] += 2000
        except OSError:
            pass  # the agent closed the connection on shutdown

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    time.sleep(1.5)
    summary = agent.stop()
    stop.set()
    assert summary["received"] > 2000
    check_accounting(summary, tmp_path)
    # At most the line the sender was cut off in: dead-lettered as such, not lost.
    dead = read_jsonl(tmp_path / "dead.jsonl")
    assert len(dead) <= 1 and all(d["reason"] == "partial_line" for d in dead)


def test_an_injection_attempt_never_reaches_a_command(network_bundle, tmp_path):
    calls = tmp_path / "nft_calls.txt"
    fake_nft = tmp_path / "nft"
    fake_nft.write_text(f'#!/bin/sh\nfor a in "$@"; do printf \'%s\\n\' "$a" >> {calls}; done\necho --- >> {calls}\n')
    fake_nft.chmod(0o755)
    evil = malicious_events(400, "1.2.3.4; rm -rf /")
    good_attacker = json.loads(evil[0])
    good_attacker["src_ip"] = "203.0.113.77"
    stdin = tmp_path / "in.jsonl"
    stdin.write_bytes(b"\n".join([*evil, json.dumps(good_attacker).encode()]) + b"\n")
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "stdin"}],
        rules=[{"rule": "block", "task": "threat", "threshold": 0.0, "actions": ["alert", "firewall"]}],
        actions={"firewall": {"dry_run": False, "nft_path": str(fake_nft)}},
        rate_limit={"max_actions": 10000, "per_seconds": 1},
    )
    with open(stdin, "rb") as fh:
        agent = AgentProc(cfg, stdin=fh)
        agent.proc.wait(60)
    records = read_jsonl(tmp_path / "alerts.jsonl")
    alerts = [r for r in records if r["event_type"] == "alert"]
    assert len(alerts) == len(evil) + 1
    # a live command runs behind the output stage: the alert says queued, the outcome follows
    assert {a["actions"][0]["result"] for a in alerts} == {"queued"}
    results = {r["alert_id"]: r["action"] for r in records if r["event_type"] == "action_result"}
    outcomes = [results[a["alert_id"]] for a in alerts]
    assert sum(o["result"] == "skipped" and "invalid address" in o["reason"] for o in outcomes) == len(evil)
    assert sum(o["result"] == "ok" for o in outcomes) == 1
    recorded = calls.read_text()
    assert "rm -rf" not in recorded and ";" not in recorded
    assert "{ 203.0.113.77 timeout 3600s }" in recorded.splitlines()


def test_stdin_to_eof_exits_by_itself_and_counts_everything(network_bundle, tmp_path):
    stdin = tmp_path / "in.jsonl"
    stdin.write_bytes(b"\n".join(events(500) + MALFORMED + UNSEEN) + b"\n")
    cfg = write_config(tmp_path, network_bundle[0], [{"type": "stdin"}])
    summary = run_to_eof(cfg, stdin)
    assert summary["received"] == 500 + len(MALFORMED) + len(UNSEEN)
    assert summary["rejected"] == len(MALFORMED)
    check_accounting(summary, tmp_path)


def test_real_eve_json_every_record_is_scored_filtered_or_rejected(network_bundle, tmp_path):
    """The soc profile's event section on real Suricata output, through the agent as
    run from a shell: read = scored + filtered + rejected, filtered in metrics and summary."""
    import gzip

    soc = yaml.safe_load((REPO / "firmware_configs/suricata_flat_model.yaml").read_text())
    raw = b""
    for name in ("benign_http-dns_wikipedia", "attack_bruteforce_ftp"):
        with gzip.open(REPO / f"tests/fixtures/suricata/{name}.eve.json.gz") as fh:
            raw += fh.read()
    raw += b'{"event_type": "flow", "flow": {"bytes_toserver": "lots"}}\n'  # a flow the model cannot read
    records = [json.loads(line) for line in raw.splitlines()]
    stdin = tmp_path / "eve.json"
    stdin.write_bytes(raw)
    cfg = write_config(tmp_path, network_bundle[0], [{"type": "stdin"}], event=soc["event"])
    summary = run_to_eof(cfg, stdin)
    flows = sum(r["event_type"] == "flow" for r in records)
    assert summary["received"] == len(records)
    assert summary["filtered"] == len(records) - flows and summary["rejected"] == 1
    assert summary["scored"] == flows - 1
    check_accounting(summary, tmp_path)
    assert read_jsonl(tmp_path / "dead.jsonl")[0]["reason"] == "wrong_type"


def test_metrics_endpoint_and_sqlite_alert_store(network_bundle, tmp_path):
    mport, tport = free_port(), free_port()
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "tcp", "host": "127.0.0.1", "port": tport}],
        metrics={"enabled": True, "host": "127.0.0.1", "port": mport, "stats_interval_s": 0},
        sinks={"jsonl": {"path": str(tmp_path / "alerts.jsonl")}, "sqlite": {"path": str(tmp_path / "alerts.db")}},
    )
    agent = AgentProc(cfg)
    agent.wait_for(f"jenga-edge {__version__}")
    with socket.create_connection(("127.0.0.1", tport)) as s:
        s.sendall(b"\n".join(events(200) + MALFORMED[:1]) + b"\n")
    import urllib.request

    assert wait_until(lambda: _received(mport) >= 201)
    body = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics").read().decode()
    assert 'jenga_events_rejected_total{reason="bad_json"} 1' in body
    assert urllib.request.urlopen(f"http://127.0.0.1:{mport}/healthz").status == 200
    summary = agent.stop()
    n = summary["alerts"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jenga_edge.cli",
            "alerts",
            "--db",
            str(tmp_path / "alerts.db"),
            "--since",
            "1h",
            "--json",
            "--limit",
            "100000",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == n > 0


def _received(port: int) -> float:
    try:
        return _metric(port, "jenga_events_received_total")
    except OSError:
        return 0.0


def _metric(port: int, name: str) -> float:
    import urllib.request

    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


@pytest.mark.parametrize(
    "name", ["arm_gateway_1core", "x86_branch_firewall", "suricata_flat_model", "inline_low_latency"]
)
def test_firmware_profiles_validate_against_a_real_bundle(network_bundle, name):
    res = CliRunner().invoke(
        edge_cli,
        ["validate", "--config", str(REPO / f"firmware_configs/{name}.yaml"), "--bundle", str(network_bundle[0])],
    )
    assert res.exit_code == 0, res.output
    assert "verified" in res.stdout
    if name == "suricata_flat_model":  # validate shows how events are read
        assert "events, as this agent reads them:" in res.stdout
        assert "scored: event_type: flow" in res.stdout and "protocol <- proto (strip, lower)" in res.stdout
        assert "bytes_sent <- flow.bytes_toserver" in res.stdout


@pytest.mark.parametrize(
    "raw,where,hint",
    [
        (
            {"agent": {"bundle": "b"}, "sources": [{"type": "stdin"}], "batching": {"max_bach": 3}},
            "batching.max_bach",
            "did you mean 'max_batch'",
        ),
        (
            {"agent": {"bundle": "b"}, "sources": [{"type": "tcp", "port": 99999}]},
            "sources[0].port",
            "expected a value <= 65535",
        ),
    ],
)
def test_validate_reports_a_malformed_config_in_one_line(tmp_path, raw, where, hint):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    res = CliRunner().invoke(edge_cli, ["validate", "--config", str(bad)])
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error:")
    assert where in res.stderr and hint in res.stderr


def test_webhook_runs_off_the_scoring_thread_and_delivers_every_alert(network_bundle, tmp_path):
    import http.server

    got = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            time.sleep(0.01)  # a slow receiver must not slow scoring down
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stdin = tmp_path / "in.jsonl"
    stdin.write_bytes(b"\n".join(events(300, seed=31)) + b"\n")
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "stdin"}],
        rules=[{"rule": "notify", "task": "threat", "actions": ["alert", "webhook"]}],
        actions={
            "webhook": {"url": f"http://127.0.0.1:{server.server_port}/hook", "spool_dir": str(tmp_path / "spool")}
        },
        rate_limit={"max_actions": 100000, "per_seconds": 1},
    )
    try:
        run_to_eof(cfg, stdin, timeout=120)
    finally:
        server.shutdown()
    records = read_jsonl(tmp_path / "alerts.jsonl")
    alerts = [r for r in records if r["event_type"] == "alert"]
    assert alerts and all(a["actions"][0]["result"] == "queued" for a in alerts)
    assert sorted(g["score"] for g in got) == sorted(a["score"] for a in alerts)
    # each delivery's outcome was recorded afterwards, keyed by the alert it completes
    results = [r for r in records if r["event_type"] == "action_result"]
    assert sorted(r["alert_id"] for r in results) == sorted(a["alert_id"] for a in alerts)
    assert {r["action"]["result"] for r in results} == {"ok"}


def test_a_failing_batch_is_dead_lettered_and_the_agent_keeps_going(network_bundle, tmp_path):
    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config

    cfg = write_config(tmp_path, network_bundle[0], [{"type": "stdin"}])
    agent = Agent(load_agent_config(cfg), log=lambda s: None)
    good = events(20)
    real_score = agent.pipe.scorer.score
    agent.pipe.scorer.score = lambda *feed: (_ for _ in ()).throw(RuntimeError("onnxruntime exploded"))
    agent.process_safely(batch(good[:10]))
    agent.pipe.scorer.score = real_score
    agent.process_safely(batch(good[10:]))
    agent.dead_letter.close()
    dead = read_jsonl(tmp_path / "dead.jsonl")
    assert len(dead) == 10 and {d["reason"] for d in dead} == {"processing_error"}
    assert "onnxruntime exploded" in dead[0]["message"]
    s = agent.summary()
    assert s["received"] == 20 and s["rejected"] == 10 and s["scored"] == 10


def test_allowlist_protects_the_address_the_firewall_would_block(network_bundle, tmp_path):
    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config

    ev = malicious_events(300, "198.51.100.9")
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "stdin"}],
        rules=[{"rule": "r", "task": "threat", "threshold": 0.0, "key": "dest_port", "actions": ["alert", "firewall"]}],
        allowlist=["198.51.100.0/24"],
        actions={"firewall": {"dry_run": True}},
        rate_limit={"max_actions": 100000, "per_seconds": 1},
    )
    agent = Agent(load_agent_config(cfg), log=lambda s: None)
    alerts = agent.process(batch(ev))
    assert alerts and all(
        a["actions"][0] == {"type": "firewall", "result": "skipped", "reason": "allowlisted", "name": "firewall"}
        for a in alerts
    )


def test_a_rules_target_names_the_address_its_firewall_action_blocks(network_bundle, tmp_path):
    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config

    ev = malicious_events(300, "198.51.100.9")
    rule = {"rule": "r", "task": "threat", "threshold": 0.0, "actions": ["alert", "firewall"]}
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "stdin"}],
        rules=[{**rule, "target": "dest_ip"}, {**rule, "rule": "default"}],
        actions={"firewall": {"dry_run": True}},
        rate_limit={"max_actions": 100000, "per_seconds": 1},
    )
    agent = Agent(load_agent_config(cfg), log=lambda s: None)
    alerts = agent.process(batch(ev))
    targeted = [a for a in alerts if a["rule"] == "r"]
    assert targeted and len(targeted) * 2 == len(alerts)
    for a in targeted:
        assert a["target"] == {"field": "dest_ip", "value": a["dest_ip"]}
        assert a["actions"][0]["address"] == a["dest_ip"] != "198.51.100.9"
    # without a target the firewall's ip_field (src_ip) is blocked, as before
    assert {a["actions"][0]["address"] for a in alerts if a["rule"] == "default"} == {"198.51.100.9"}
    # the allowlist protects the target: every destination allowlisted, the source not
    cfg2 = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "stdin"}],
        rules=[{**rule, "target": "dest_ip"}, {**rule, "rule": "default"}],
        allowlist=sorted({json.loads(e)["dest_ip"] for e in ev}),
        actions={"firewall": {"dry_run": True}},
        rate_limit={"max_actions": 100000, "per_seconds": 1},
    )
    agent2 = Agent(load_agent_config(cfg2), log=lambda s: None)
    results = {(a["rule"], a["actions"][0]["result"]) for a in agent2.process(batch(ev))}
    assert results == {("r", "skipped"), ("default", "dry_run")}


def _alert_one_by_one(agent, hit, batch, lines, now, index, pending):
    """Agent._alert as it was before alerts were built per batch: the reference."""
    from jenga_edge.config import RESERVED_ACTION
    from jenga_edge.rules import render_output

    pipe, rule = agent.pipe, hit.rule
    row = hit.row
    agent._alert_seq += 1
    alert = {
        "alert_id": f"{agent.run_id}-{agent._alert_seq}",
        "timestamp": now,
        "event_type": "alert",
        "agent": agent.agent_info,
        "rule": rule.cfg.rule,
        "priority": hit.priority,
        "task": rule.task.name if rule.task else None,
        "score": round(hit.score, 6) if hit.score is not None else None,
        "threshold": rule.threshold,
        "model": pipe.model_refs[rule.task.name] if rule.task else None,
        "source": lines.origin_of(batch.index[row]),
    }
    if hit.label is not None:
        alert["label"] = hit.label
    keys = batch.keys
    for k in pipe.cfg.event.keys:
        v = keys[k][row] if k in keys else None
        if v is not None:
            alert[k] = v
    alert["fields"] = {k: keys[k][row] if k in keys else None for k in pipe.cfg.event.fields}
    if rule.cfg.output:
        values = {k: v[row] for k, v in keys.items()}
        alert["output"] = render_output(rule.cfg.output, {**values, **alert})
    if rule.cfg.tags:
        alert["tags"] = rule.cfg.tags
    if rule.cfg.target:
        alert["target"] = {"field": rule.cfg.target, "value": keys[rule.cfg.target][row]}
    acts = [a for a in rule.cfg.actions if a != RESERVED_ACTION]
    if acts:
        target = keys[rule.cfg.key][row] if rule.cfg.key else alert.get("src_ip")
        alert["actions"] = [agent._act(name, alert, target, index, pending) for name in acts]
    else:
        alert["actions"] = []
    return alert


def test_alerts_built_per_batch_are_the_alerts_built_one_by_one(network_bundle, tmp_path):
    # Alerts are built per batch (each rule's constants and the key columns looked up once):
    # every alert must be the one the per-hit code built, key order and JSON bytes included,
    # with the actions' outcomes and the queued actions in the same order.
    import msgspec

    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config

    labels = next(t for t in network_bundle[1].tasks if t.name == "attack_type").labels
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "stdin"}],
        event={"keys": ["src_ip", "dest_ip", "dest_port", "no_such_key"], "fields": ["protocol", "nope"]},
        rules=[
            {
                "rule": "threat",
                "task": "threat",
                "threshold": 0.0,
                "severity": [{"min_score": 0.9, "priority": "critical"}],
                "output": "%src_ip -> %dest_ip:%dest_port scored %score (%nope)",
                "tags": ["T1046"],
                "target": "dest_ip",
                "key": "src_ip",
                "actions": ["alert", "firewall", "hook"],
            },
            {"rule": "kind", "task": "attack_type", "labels": list(labels), "actions": ["alert"]},
            {"rule": "web", "condition": {"dest_port": [80, 443]}, "actions": ["alert", "hook"]},
        ],
        actions={"firewall": {"dry_run": True}, "hook": {"type": "exec", "argv": ["/bin/true"], "dry_run": True}},
        allowlist=["10.0.0.0/8"],
        rate_limit={"max_actions": 150, "per_seconds": 3600},
    )
    new, old = (Agent(load_agent_config(cfg), log=lambda s: None) for _ in range(2))
    old.run_id = new.run_id
    ev = events(120, seed=11) + malicious_events(200, "10.1.2.3", seed=12)
    lines = Batch(ev, None, [("first", 50), ("second", len(ev) - 50)])
    now = "2026-12-02T07:00:00.000Z"
    built, pending = [], []
    for agent in (new, old):
        pipe = agent.pipe
        b = pipe.decoder.decode(lines.data)
        hits = pipe.rules.evaluate(b, pipe.scorer.score(b.num, b.cat, b.text, b.text_len))
        queued: list = []
        if agent is new:
            built.append(agent._alerts(hits, b, lines, now, queued))
        else:
            built.append([_alert_one_by_one(agent, h, b, lines, now, i, queued) for i, h in enumerate(hits)])
        pending.append(queued)
    assert len(built[0]) > 300 and {a["rule"] for a in built[0]} == {"threat", "kind", "web"}
    assert {a["source"] for a in built[0]} == {"first", "second"}
    assert built[0] == built[1]
    assert [list(a) for a in built[0]] == [list(a) for a in built[1]]
    assert msgspec.json.encode(built[0]) == msgspec.json.encode(built[1])
    assert [(i, n, a["alert_id"]) for i, n, a in pending[0]] == [(i, n, a["alert_id"]) for i, n, a in pending[1]]
    outcomes = {o["result"] for a in built[0] for o in a["actions"]}
    assert {"dry_run", "skipped"} <= outcomes


def test_reload_keeps_cooldowns_and_reports_restart_only_changes(network_bundle, tmp_path):
    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config

    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "stdin"}],
        rules=[
            {"rule": "r", "task": "threat", "threshold": 0.0, "key": "src_ip", "cooldown_s": 3600, "actions": ["alert"]}
        ],
    )
    logs = []
    agent = Agent(load_agent_config(cfg), str(cfg), log=logs.append)
    ev = batch(events(50, seed=41))
    first = agent.process(ev)
    assert first  # one alert per distinct src_ip
    raw = yaml.safe_load(cfg.read_text())
    raw["batching"]["max_batch"] = 7  # restart-only
    cfg.write_text(yaml.safe_dump(raw))
    agent.request_reload()
    agent._reload()
    assert agent.reloads == {"ok": 1, "failed": 0}
    assert any("take effect on restart" in line and "batching" in line for line in logs)
    assert agent.cfg.batching.max_batch == 64  # the running value is kept
    assert agent.process(ev) == []  # the same keys are still cooling down


def test_the_c_fast_paths_change_nothing_but_speed(network_bundle, tmp_path):
    """The same input through the real agent with its C extensions and with
    JENGA_EDGE_PURE=1 (the pure-Python paths): the same counts, alerts and
    dead letters."""
    import os

    from jenga_edge import native

    if native.fastjson is None or native.syncer is None:
        pytest.skip("the C extensions are not built (or JENGA_EDGE_PURE is set): nothing to compare")
    edge = [
        b'{"packet_size": "1500", "dest_port": "22", "syn": "yes"}',
        b'{"protocol": " tcp ", "src_ip": "\\u0031.2.3.4"}',
        b'{"packet_size": 1e39}',
        b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}",
        b'{"dest_port": 22, "dest_port": 80}',
        b'{"src_ip": "\xff\xfe"}',
        b'{"duration": 0.1e1, "bytes_sent": -0}\r',
    ]
    stdin = tmp_path / "in.jsonl"
    stdin.write_bytes(b"\n".join(events(3000, seed=8) + MALFORMED + UNSEEN + edge) + b"\n\n")
    results = []
    for pure in ("0", "1"):
        out = tmp_path / f"pure{pure}"
        out.mkdir()
        cfg = write_config(out, network_bundle[0], [{"type": "stdin"}])
        with open(stdin, "rb") as fh:
            proc = subprocess.run(
                [sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(cfg)],
                stdin=fh,
                capture_output=True,
                text=True,
                cwd=REPO,
                timeout=120,
                env={**os.environ, "JENGA_EDGE_PURE": pure},
            )
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stderr.strip().splitlines()[-1])
        check_accounting(summary, out)
        # alert_id differs per run (the run's random id): compare everything else
        alerts = [
            {k: v for k, v in a.items() if k not in ("timestamp", "alert_id")} for a in read_jsonl(out / "alerts.jsonl")
        ]
        dead = [{k: v for k, v in d.items() if k != "timestamp"} for d in read_jsonl(out / "dead.jsonl")]
        results.append(({k: summary[k] for k in ("received", "scored", "rejected", "alerts")}, alerts, dead))
    assert results[0][0]["received"] == 3000 + len(MALFORMED) + len(UNSEEN) + len(edge)
    assert results[0] == results[1]


def test_errors_only_the_bundle_reveals_name_the_config_file(network_bundle, tmp_path):
    cfg = write_config(
        tmp_path, network_bundle[0], [{"type": "stdin"}], rules=[{"rule": "r", "task": "nope", "actions": ["alert"]}]
    )
    res = CliRunner().invoke(edge_cli, ["validate", "--config", str(cfg)])
    assert res.exit_code == 2
    bundle_id = network_bundle[1].bundle_id
    assert res.stderr == (
        f"error: {cfg}: rules[0].task: 'nope' is not a task of bundle {bundle_id} (it has: threat, attack_type)\n"
    )
