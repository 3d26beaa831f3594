"""Tests for jenga_edge/actions.py: firewall, exec and webhook actions, rate limiting."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jenga_edge import actions as act
from jenga_edge.actions import (
    ExecAction,
    ExecConfig,
    FirewallAction,
    FirewallConfig,
    RateLimitConfig,
    RateLimiter,
    WebhookAction,
    WebhookConfig,
    build_actions,
    run_actions,
)
from jenga_edge.contract.errors import ConfigError
from jenga_edge.contract.typed import build, parse_yaml

INJECTIONS = [
    "1.2.3.4; rm -rf /",
    "1.2.3.4 && reboot",
    "$(id)",
    "`id`",
    "1.2.3.4\n5.6.7.8",
    "1.2.3.4 5.6.7.8",
    "$(reboot)",
    "::1",
    "0.0.0.0",
    "::",
    "10.0.0.0/8",
    "224.0.0.1",
    "fe80::1",
    "255.255.255.255",
    "127.0.0.1",
    "2001:db8::1%eth0",
    "2001:db8::1%x }, { 0.0.0.0/0",
    " 1.2.3.4",
    "1.2.3.4\n",
    "-1.2.3.4",
    "",
    12345,
    3232235777,
    None,
    ["1.2.3.4"],
    b"1.2.3.4",
    True,
]


def alert(**over):
    a = {"timestamp": "2024-05-01T12:00:00Z", "rule": "ssh_block", "priority": "critical",
         "task": "threat", "score": 0.97, "threshold": 0.8, "src_ip": "203.0.113.7",
         "dest_ip": "10.0.0.5", "dest_port": 22, "fields": {"user": "root"}}
    a.update(over)
    return a


@pytest.fixture
def no_subprocess(monkeypatch):
    """Record every subprocess.run call; none may happen where this is used."""
    calls = []

    def fake_run(*args, **kwargs):
        calls.append((args, kwargs))
        raise AssertionError(f"subprocess.run called: {args!r}")

    monkeypatch.setattr(subprocess, "run", fake_run)
    return calls


@pytest.fixture
def recording_subprocess(monkeypatch):
    """subprocess.run that records calls and reports success."""
    calls = []

    def fake_run(argv, **kwargs):
        calls.append((argv, kwargs))
        return subprocess.CompletedProcess(argv, 0, b"", b"")

    monkeypatch.setattr(subprocess, "run", fake_run)
    return calls


def fake_tool(tmp_path: Path, name: str = "fake-nft", exit_code: int = 0, stderr: str = "") -> tuple[Path, Path]:
    """An executable that writes its argv (as JSON) to a file, then exits."""
    log = tmp_path / f"{name}.argv.json"
    script = tmp_path / name
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({exit_code})\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


# --- firewall: the injection corpus ---------------------------------------------------------

@pytest.mark.parametrize("backend", ["nftables", "ipset"])
@pytest.mark.parametrize("dry_run", [True, False])
@pytest.mark.parametrize("value", INJECTIONS, ids=[repr(v)[:30] for v in INJECTIONS])
def test_injection_corpus_never_builds_an_argv(no_subprocess, monkeypatch, backend, dry_run, value):
    built = []
    real_argv = FirewallAction.argv
    monkeypatch.setattr(FirewallAction, "argv", lambda self, a: built.append(a) or real_argv(self, a))
    action = FirewallAction(FirewallConfig(backend=backend, dry_run=dry_run))
    out = action.run(alert(src_ip=value))
    assert out["result"] == "skipped"
    assert out["argv"] is None
    assert out["type"] == "firewall"
    assert out["reason"]
    assert built == []
    assert no_subprocess == []


@pytest.mark.parametrize("value", ["1.2.3.4; rm -rf /", "$(id)", "`id`", "1.2.3.4\n5.6.7.8",
                                   "10.0.0.0/8", 12345, None])
def test_invalid_addresses_say_invalid_address(no_subprocess, value):
    out = FirewallAction().run(alert(src_ip=value))
    assert out["result"] == "skipped"
    assert out["reason"].startswith("invalid address")


@pytest.mark.parametrize("value,kind", [("::1", "loopback"), ("127.0.0.1", "loopback"),
                                        ("0.0.0.0", "unspecified"), ("::", "unspecified"),
                                        ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
                                        ("fe80::1", "link-local"), ("::ffff:127.0.0.1", "loopback")])
def test_special_addresses_are_refused_with_their_kind(no_subprocess, value, kind):
    out = FirewallAction().run(alert(src_ip=value))
    assert out["result"] == "skipped"
    assert kind in out["reason"]


def test_missing_address_field_is_skipped(no_subprocess):
    a = alert()
    del a["src_ip"]
    out = FirewallAction().run(a)
    assert out["result"] == "skipped" and "invalid address" in out["reason"]
    assert "src_ip" in out["reason"]


def test_allowlist_addresses_and_networks(no_subprocess):
    action = FirewallAction(FirewallConfig(allowlist=["10.0.0.0/8", "192.0.2.1", "2001:db8::/32",
                                                      "198.51.100.7/24"]))
    for ip in ["10.1.2.3", "192.0.2.1", "2001:db8::5", "198.51.100.200", "::ffff:10.9.9.9"]:
        out = action.run(alert(src_ip=ip))
        assert out["result"] == "skipped", ip
        assert out["reason"].startswith("allowlisted"), ip
        assert out["argv"] is None
    out = action.run(alert(src_ip="192.0.2.2"))
    assert out["result"] == "dry_run"


def test_allowlist_entries_are_checked_at_config_time():
    with pytest.raises(ConfigError, match=r"allowlist\[1\]"):
        FirewallConfig(allowlist=["10.0.0.0/8", "10.0.0.0/33"])
    with pytest.raises(ConfigError, match=r"allowlist\[0\]"):
        FirewallConfig(allowlist=["not-an-ip"])


# --- firewall: argv ---------------------------------------------------------------------------

def test_nft_ipv4_dry_run_by_default(no_subprocess):
    out = FirewallAction().run(alert())
    assert out["dry_run"] is True
    assert out["result"] == "dry_run"
    assert out["target"] == "inet jenga blocklist"
    assert out["argv"] == ["nft", "add", "element", "inet", "jenga", "blocklist",
                           "{ 203.0.113.7 timeout 3600s }"]


def test_nft_ipv6_goes_to_set6_in_canonical_form(no_subprocess):
    out = FirewallAction().run(alert(src_ip="2001:DB8:0:0::0001"))
    assert out["result"] == "dry_run"
    assert out["target"] == "inet jenga blocklist6"
    assert out["argv"] == ["nft", "add", "element", "inet", "jenga", "blocklist6",
                           "{ 2001:db8::1 timeout 3600s }"]


def test_nft_custom_names_field_and_timeout(no_subprocess):
    cfg = FirewallConfig(family="ip", table="edge_fw", set="bad-v4", set6="bad-v6",
                         ip_field="dest_ip", timeout_s=60, nft_path="/usr/sbin/nft")
    out = FirewallAction(cfg).run(alert(dest_ip="198.51.100.9"))
    assert out["argv"] == ["/usr/sbin/nft", "add", "element", "ip", "edge_fw", "bad-v4",
                           "{ 198.51.100.9 timeout 60s }"]
    cfg.timeout_s = 0
    out = FirewallAction(cfg).run(alert(dest_ip="198.51.100.9"))
    assert out["argv"][-1] == "{ 198.51.100.9 }"


def test_ipv4_mapped_ipv6_is_blocked_as_ipv4(no_subprocess):
    out = FirewallAction().run(alert(src_ip="::ffff:203.0.113.7"))
    assert out["argv"][-2:] == ["blocklist", "{ 203.0.113.7 timeout 3600s }"]


def test_ipset_argv_ipv4_and_ipv6(no_subprocess):
    action = FirewallAction(FirewallConfig(backend="ipset"))
    out = action.run(alert())
    assert out["result"] == "dry_run"
    assert out["target"] == "jenga-block"
    assert out["argv"] == ["ipset", "add", "jenga-block", "203.0.113.7", "timeout", "3600", "-exist"]
    out = action.run(alert(src_ip="2001:db8::7"))
    assert out["target"] == "jenga-block6"
    assert out["argv"] == ["ipset", "add", "jenga-block6", "2001:db8::7", "timeout", "3600", "-exist"]
    out = FirewallAction(FirewallConfig(backend="ipset", timeout_s=0, ipset="x")).run(alert())
    assert out["argv"] == ["ipset", "add", "x", "203.0.113.7", "-exist"]


@pytest.mark.parametrize("key,value", [("table", "jenga; drop"), ("set", ""), ("family", "in et"),
                                       ("set6", "x" * 33), ("ipset", "a/b"), ("ipset6", "$(id)"),
                                       ("table", 5)])
def test_firewall_names_must_be_identifiers(key, value):
    with pytest.raises(ConfigError, match=f"firewall.{key}"):
        FirewallConfig(**{key: value})


def test_firewall_config_via_typed_loader():
    cfg = build(FirewallConfig, parse_yaml("backend: ipset\ntimeout_s: 120\nallowlist: ['10.0.0.0/8']\n"))
    assert cfg.backend == "ipset" and cfg.timeout_s == 120 and cfg.dry_run is True
    with pytest.raises(ConfigError, match="timeout_s"):
        build(FirewallConfig, {"timeout_s": -1})
    with pytest.raises(ConfigError, match="backend"):
        build(FirewallConfig, {"backend": "iptables"})
    with pytest.raises(ConfigError, match="absolute path"):
        FirewallConfig(nft_path="bin/nft")


def test_real_run_calls_subprocess_without_shell(recording_subprocess):
    out = FirewallAction(FirewallConfig(dry_run=False, command_timeout_s=2.5)).run(alert())
    assert out["result"] == "ok" and out["dry_run"] is False
    ((argv, kwargs),) = recording_subprocess
    assert argv == out["argv"]
    assert kwargs["shell"] is False
    assert kwargs["timeout"] == 2.5
    assert kwargs["capture_output"] is True


# --- firewall: real execution with a fake nft -------------------------------------------------

def test_fake_nft_receives_the_element_as_one_argument(tmp_path):
    nft, log = fake_tool(tmp_path)
    out = FirewallAction(FirewallConfig(dry_run=False, nft_path=str(nft))).run(alert())
    assert out["result"] == "ok", out
    assert "blocked 203.0.113.7" in out["reason"]
    assert json.loads(log.read_text()) == ["add", "element", "inet", "jenga", "blocklist",
                                           "{ 203.0.113.7 timeout 3600s }"]


def test_fake_ipset_receives_exact_argv(tmp_path):
    ipset, log = fake_tool(tmp_path, "fake-ipset")
    out = FirewallAction(FirewallConfig(backend="ipset", dry_run=False, ipset_path=str(ipset))).run(
        alert(src_ip="2001:db8::9"))
    assert out["result"] == "ok"
    assert json.loads(log.read_text()) == ["add", "jenga-block6", "2001:db8::9", "timeout", "3600", "-exist"]


def test_failing_nft_reports_first_stderr_line(tmp_path):
    nft, log = fake_tool(tmp_path, exit_code=1,
                         stderr="Error: No such file or directory\nadd element inet jenga blocklist\n")
    out = FirewallAction(FirewallConfig(dry_run=False, nft_path=str(nft))).run(alert())
    assert out["result"] == "failed"
    assert out["reason"].endswith("Error: No such file or directory")
    assert "status 1" in out["reason"]
    assert log.exists()


def test_missing_nft_is_failed_not_raised(tmp_path):
    out = FirewallAction(FirewallConfig(dry_run=False, nft_path=str(tmp_path / "nope"))).run(alert())
    assert out["result"] == "failed"
    assert out["reason"].startswith("nft not found")
    out = FirewallAction(FirewallConfig(backend="ipset", dry_run=False,
                                        ipset_path=str(tmp_path / "nope"))).run(alert())
    assert out["reason"].startswith("ipset not found")


def test_hung_command_times_out(tmp_path):
    script = tmp_path / "slow-nft"
    script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    script.chmod(0o755)
    out = FirewallAction(FirewallConfig(dry_run=False, nft_path=str(script),
                                        command_timeout_s=0.3)).run(alert())
    assert out["result"] == "failed"
    assert "timed out" in out["reason"]


# --- exec ----------------------------------------------------------------------------------

TEMPLATE = ["/usr/local/bin/quarantine", "--ip", "{src_ip}", "--score", "{score}",
            "--to={dest_ip}:{dest_port}", "{rule}/{task}/{priority}", "t={threshold}", "{{literal}}"]


def test_exec_substitutes_whole_and_inner_tokens(no_subprocess):
    out = ExecAction(ExecConfig(argv=TEMPLATE)).run(alert(dest_ip="2001:DB8::5"))
    assert out["result"] == "dry_run" and out["dry_run"] is True
    assert out["target"] == "/usr/local/bin/quarantine"
    assert out["argv"] == ["/usr/local/bin/quarantine", "--ip", "203.0.113.7", "--score", "0.97",
                           "--to=2001:db8::5:22", "ssh_block/threat/critical", "t=0.8", "{literal}"]


def test_exec_only_checks_values_it_uses(no_subprocess):
    out = ExecAction(ExecConfig(argv=["/bin/notify", "{rule}"])).run(alert(src_ip="$(id)", dest_port=None))
    assert out["argv"] == ["/bin/notify", "ssh_block"]


@pytest.mark.parametrize("key,value", [
    ("src_ip", "1.2.3.4; rm -rf /"), ("src_ip", "$(id)"), ("dest_ip", "10.0.0.0/8"), ("src_ip", 12345),
    ("src_ip", None), ("dest_port", 70000), ("dest_port", -1), ("dest_port", "22; reboot"),
    ("dest_port", True), ("dest_port", 22.5), ("score", "0.9"), ("score", float("nan")),
    ("threshold", float("inf")), ("score", True), ("rule", "ssh block"), ("rule", "a;b"),
    ("rule", "-rf"), ("task", "`id`"), ("priority", ""), ("priority", 3), ("rule", "x" * 200),
    ("task", "a\nb"),
])
def test_exec_bad_values_skip_without_running(no_subprocess, key, value):
    out = ExecAction(ExecConfig(argv=TEMPLATE, dry_run=False)).run(alert(**{key: value}))
    assert out["result"] == "skipped"
    assert out["argv"] is None
    assert key in out["reason"]
    assert no_subprocess == []


def test_exec_port_accepts_digit_string(no_subprocess):
    out = ExecAction(ExecConfig(argv=["/bin/x", "{dest_port}"])).run(alert(dest_port="0443"))
    assert out["argv"] == ["/bin/x", "443"]


@pytest.mark.parametrize("argv,match", [
    (["/bin/x", "{fields}"], "fields"),
    (["/bin/x", "--{user}"], "user"),
    (["/bin/x", "{src_ip.__class__}"], "src_ip.__class__"),
    (["/bin/x", "{0}"], "placeholder"),
    (["/bin/x", "{}"], "placeholder"),
    (["/bin/x", "{score:.2f}"], "format spec"),
    (["/bin/x", "{src_ip!r}"], "conversion"),
    (["/bin/x", "{src_ip"], "bad template"),
    (["relative/tool", "{src_ip}"], "absolute path"),
    (["quarantine", "{src_ip}"], "absolute path"),
    (["/usr/bin/{rule}"], "argv\\[0\\]"),
    ([], "non-empty"),
    (["/bin/x", 5], "argv\\[1\\]"),
])
def test_exec_template_errors_at_config_time(argv, match):
    with pytest.raises(ConfigError, match=match):
        ExecConfig(argv=argv)


def test_exec_unknown_placeholder_is_named():
    with pytest.raises(ConfigError) as exc:
        ExecConfig(argv=["/bin/x", "--host={hostname}"])
    assert "{hostname}" in str(exc.value)
    assert "src_ip" in str(exc.value)   # lists the allowed names


def test_exec_real_run_passes_arguments_verbatim(tmp_path):
    tool, log = fake_tool(tmp_path, "quarantine")
    pwned = tmp_path / "pwned"
    literal = f"a;b $(id) `id` | x > {pwned} && touch {pwned}; 'q' \"dq\" *"
    out = ExecAction(ExecConfig(argv=[str(tool), "--ip={src_ip}", literal, "{score}"],
                                dry_run=False)).run(alert())
    assert out["result"] == "ok", out
    assert out["exit_status"] == 0
    assert json.loads(log.read_text()) == ["--ip=203.0.113.7", literal, "0.97"]
    assert not pwned.exists()


def test_exec_failure_exit_code(tmp_path):
    tool, _ = fake_tool(tmp_path, "quarantine", exit_code=3, stderr="\n  cannot reach switch  \nmore\n")
    out = ExecAction(ExecConfig(argv=[str(tool)], dry_run=False)).run(alert())
    assert out["result"] == "failed"
    assert out["exit_status"] == 3
    assert out["reason"] == "quarantine exited with status 3: cannot reach switch"


def test_exec_missing_program(tmp_path):
    out = ExecAction(ExecConfig(argv=[str(tmp_path / "gone")], dry_run=False)).run(alert())
    assert out["result"] == "failed" and "not found" in out["reason"]


# --- webhook -------------------------------------------------------------------------------

class Receiver:
    """A real HTTP server on 127.0.0.1 answering with scripted statuses."""

    def __init__(self, port: int = 0, statuses: list[int] | None = None):
        self.bodies: list[bytes] = []
        self.headers: list[dict] = []
        self.statuses = list(statuses or [])
        self.hold = threading.Event()
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay:
                    receiver.hold.wait(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    receiver.bodies.append(body)
                    receiver.headers.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self):
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hook(tmp_path, url, sleeps=None, **kw) -> WebhookAction:
    kw.setdefault("timeout_s", 2.0)
    cfg = WebhookConfig(url=url, spool_dir=str(tmp_path / "spool"), **kw)
    return WebhookAction(cfg, sleep=(sleeps.append if sleeps is not None else lambda s: None))


def test_webhook_delivers_alert_json(tmp_path, receiver):
    a = alert()
    action = hook(tmp_path, receiver.url, headers={"Authorization": "Bearer t0ken"})
    out = action.run(a)
    assert out["result"] == "ok" and out["attempts"] == 1 and out["status"] == 200
    assert out["type"] == "webhook" and out["argv"] is None
    assert json.loads(receiver.bodies[0]) == a
    assert receiver.headers[0]["Authorization"] == "Bearer t0ken"
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert not action.spool_path.exists()


def test_webhook_retries_after_500_with_backoff(tmp_path, receiver):
    receiver.statuses = [500, 503]
    sleeps = []
    out = hook(tmp_path, receiver.url, sleeps, backoff_base_s=0.25).run(alert())
    assert out["result"] == "ok"
    assert out["attempts"] == 3
    assert sleeps == [0.25, 0.5]
    assert len(receiver.bodies) == 1


def test_webhook_backoff_is_capped(tmp_path):
    action = hook(tmp_path, "http://127.0.0.1:9/", backoff_base_s=1.0, backoff_max_s=3.0, max_retries=5)
    assert [action.backoff(i) for i in range(1, 6)] == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_webhook_4xx_is_not_retried_but_spooled(tmp_path, receiver):
    receiver.statuses = [404]
    sleeps = []
    action = hook(tmp_path, receiver.url, sleeps)
    out = action.run(alert())
    assert out["result"] == "spooled" and out["attempts"] == 1 and out["status"] == 404
    assert sleeps == []
    assert action.spooled() == 1


def test_connection_refused_spools_then_retry_spool_delivers(tmp_path):
    port = free_port()
    sleeps = []
    action = hook(tmp_path, f"http://127.0.0.1:{port}/hook", sleeps, max_retries=2)
    first, second = alert(rule="one"), alert(rule="two", score=0.5)
    out = action.run(first)
    assert out["result"] == "spooled", out
    assert out["attempts"] == 3 and len(sleeps) == 2
    assert "connection failed" in out["reason"]
    assert action.run(second)["result"] == "spooled"
    lines = action.spool_path.read_text().splitlines()
    assert [json.loads(line)["rule"] for line in lines] == ["one", "two"]
    assert stat.S_IMODE(os.stat(action.spool_path).st_mode) == 0o600

    # Still down: nothing is lost.
    assert action.retry_spool() == {"sent": 0, "failed": 1, "dropped": 0, "remaining": 2}
    assert action.spooled() == 2

    receiver = Receiver(port=port)
    try:
        counts = action.retry_spool()
        assert counts == {"sent": 2, "failed": 0, "dropped": 0, "remaining": 0}
        assert [json.loads(b) for b in receiver.bodies] == [first, second]
        assert not action.spool_path.exists()
        assert action.retry_spool() == {"sent": 0, "failed": 0, "dropped": 0, "remaining": 0}
        assert len(receiver.bodies) == 2   # delivered once
    finally:
        receiver.stop()


def test_retry_spool_keeps_rejected_and_drops_corrupt(tmp_path, receiver):
    action = hook(tmp_path, receiver.url)
    action.spool_path.parent.mkdir(parents=True)
    good = [json.dumps(alert(rule=f"r{i}")) for i in range(3)]
    action.spool_path.write_text(f"{good[0]}\n{good[1]}\n{{truncated\n{good[2]}\n")
    receiver.statuses = [200, 400, 200]
    counts = action.retry_spool()
    assert counts == {"sent": 2, "failed": 1, "dropped": 1, "remaining": 1}
    assert action.spool_path.read_text() == good[1] + "\n"
    assert [json.loads(b)["rule"] for b in receiver.bodies] == ["r0", "r2"]


def test_retry_spool_stops_at_first_server_error(tmp_path, receiver):
    action = hook(tmp_path, receiver.url)
    action.spool_path.parent.mkdir(parents=True)
    lines = [json.dumps(alert(rule=f"r{i}")) for i in range(3)]
    action.spool_path.write_text("".join(line + "\n" for line in lines))
    receiver.statuses = [200, 503]
    assert action.retry_spool() == {"sent": 1, "failed": 1, "dropped": 0, "remaining": 2}
    assert action.spool_path.read_text().splitlines() == lines[1:]


def test_webhook_timeout_spools(tmp_path, receiver):
    receiver.delay = 5.0
    out = hook(tmp_path, receiver.url, timeout_s=0.3, max_retries=0).run(alert())
    assert out["result"] == "spooled"
    assert "timed out" in out["reason"]


def test_spool_is_bounded(tmp_path):
    action = hook(tmp_path, f"http://127.0.0.1:{free_port()}/", max_retries=0, max_spool_bytes=1024)
    results = [action.run(alert(fields={"pad": "x" * 200}))["result"] for _ in range(6)]
    assert results[:2] == ["spooled", "spooled"]
    assert results[-1] == "failed"
    out = action.run(alert(fields={"pad": "x" * 200}))
    assert out["reason"].startswith("spool full")
    assert action.spool_path.stat().st_size <= 1024
    assert action.dropped == results.count("failed") + 1
    assert action.spooled() == results.count("spooled")


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "example.com/hook",
                                 "http://", "http://exa mple.com/", "https://host:99999/", "", "javascript:x"])
def test_webhook_url_must_be_http(url):
    with pytest.raises(ConfigError, match="webhook.url"):
        WebhookConfig(url=url)


def test_webhook_header_injection_rejected():
    with pytest.raises(ConfigError, match="headers"):
        WebhookConfig(url="https://example.com/", headers={"X-A": "b\r\nX-Evil: 1"})
    with pytest.raises(ConfigError, match="headers"):
        WebhookConfig(url="https://example.com/", headers={"Bad Name": "v"})


def test_webhook_target_hides_credentials(tmp_path):
    action = hook(tmp_path, "https://user:secret@example.com:8443/hook?token=abc")
    assert action.target == "https://example.com:8443/hook"


def test_webhook_serializes_numpy_values(tmp_path, receiver):
    np = pytest.importorskip("numpy")
    out = hook(tmp_path, receiver.url).run(alert(score=np.float32(0.5), dest_port=np.int64(22)))
    assert out["result"] == "ok"
    body = json.loads(receiver.bodies[0])
    assert body["score"] == 0.5 and body["dest_port"] == 22


# --- rate limiter --------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_rate_limiter_bucket_with_fake_clock():
    clock = FakeClock()
    rl = RateLimiter(3, 60.0, clock=clock)
    assert [rl.allow() for _ in range(4)] == [True, True, True, False]
    assert rl.retry_after() == pytest.approx(20.0)
    clock.now += 19.9
    assert rl.allow() is False
    clock.now += 0.1
    assert rl.allow() is True
    assert rl.allow() is False
    clock.now += 3600
    assert rl.tokens == pytest.approx(3.0)   # never more than the burst
    assert [rl.allow() for _ in range(4)] == [True, True, True, False]
    clock.now -= 500                          # a clock stepping back refills nothing
    assert rl.allow() is False


def test_rate_limiter_validation_and_config():
    for bad in [(0, 1.0), (1, 0), (1, -5), (True, 1.0), (1.5, 1.0), (1, float("nan"))]:
        with pytest.raises(ConfigError):
            RateLimiter(*bad)
    clock = FakeClock()
    rl = RateLimiter.from_config(build(RateLimitConfig, {"max_actions": 2, "per_seconds": 10}), clock=clock)
    assert [rl.allow() for _ in range(3)] == [True, True, False]


# --- factory and runner --------------------------------------------------------------------

def test_build_actions_from_raw_mapping(tmp_path):
    data = parse_yaml(f"""
block:
  type: firewall
  backend: ipset
firewall: {{}}
webhook:
  url: http://127.0.0.1:9/hook
  spool_dir: {tmp_path}
quarantine:
  type: exec
  argv: ["/usr/local/bin/quarantine", "{{src_ip}}"]
""")
    actions = build_actions(data)
    assert list(actions) == ["block", "firewall", "webhook", "quarantine"]
    assert isinstance(actions["block"], FirewallAction) and actions["block"].config.backend == "ipset"
    assert isinstance(actions["firewall"], FirewallAction)
    assert isinstance(actions["webhook"], WebhookAction)
    assert isinstance(actions["quarantine"], ExecAction)


def test_build_actions_from_objects_and_errors(tmp_path):
    actions = build_actions([FirewallConfig(), ExecConfig(argv=["/bin/x"])])
    assert set(actions) == {"firewall", "exec"}
    with pytest.raises(ConfigError, match="second firewall"):
        build_actions([FirewallConfig(), FirewallConfig()])
    with pytest.raises(ConfigError, match=r"actions.block.type"):
        build_actions({"block": {"backend": "ipset"}})
    with pytest.raises(ConfigError, match=r"actions.block.timeout_s"):
        build_actions({"block": {"type": "firewall", "timeout_s": "long"}})
    with pytest.raises(ConfigError, match=r"actions.q.*\{nope\}"):
        build_actions({"q": {"type": "exec", "argv": ["/bin/x", "{nope}"]}})
    with pytest.raises(ConfigError, match=r"actions.block.*unknown key"):
        build_actions({"block": {"type": "firewall", "tabel": "x"}})
    assert build_actions(None) == {}


def test_run_actions_appends_outcomes_and_rate_limits(no_subprocess):
    clock = FakeClock()
    actions = build_actions({"block": FirewallConfig(), "notify": ExecConfig(argv=["/bin/notify", "{rule}"])})
    limiter = RateLimiter(3, 60, clock=clock)
    a1, a2 = alert(), alert(src_ip="$(id)")
    run_actions(a1, actions, limiter)
    run_actions(a2, actions, limiter)
    assert [o["result"] for o in a1["actions"]] == ["dry_run", "dry_run"]
    assert [o["name"] for o in a1["actions"]] == ["block", "notify"]
    assert [o["result"] for o in a2["actions"]] == ["skipped", "skipped"]
    assert a2["actions"][0]["reason"].startswith("invalid address")
    assert a2["actions"][1]["reason"].startswith("rate limited")


def test_run_actions_contains_action_crashes():
    class Boom(FirewallAction):
        def run(self, alert):
            raise RuntimeError("kaput")

    a = alert()
    (out,) = run_actions(a, {"b": Boom()})
    assert out["result"] == "failed" and "kaput" in out["reason"]
    assert a["actions"] == [out]


def test_actions_module_has_no_heavy_imports():
    src = Path(act.__file__).read_text()
    for banned in ("import torch", "from trainer", "import trainer", "from export", "import export",
                   "shell=True", "os.system", "os.popen"):
        assert banned not in src


HTTP_MODULES = ("http.server", "http.client", "urllib.request", "urllib.error",
                "jenga_edge.webhook", "jenga_edge.metrics_http")


def _modules_loaded_by(code: str) -> list[str]:
    probe = code + f"\nprint(sorted(m for m in {HTTP_MODULES!r} + ('email',) if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", "import sys\n" + probe], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    return eval(proc.stdout.strip().splitlines()[-1])  # noqa: S307 - our own list literal


def test_agent_import_loads_no_http_modules():
    # http.server / urllib.request / http.client (and the email package behind them) cost
    # several MB of RSS: loaded only when a webhook or the metrics endpoint is configured.
    loaded = _modules_loaded_by(
        "import jenga_edge.agent, jenga_edge.cli\n"
        "from jenga_edge.actions import FirewallConfig, WebhookConfig, build_actions\n"
        "from jenga_edge.metrics import MetricsServer, Registry\n"
        "build_actions({'block': FirewallConfig()})\n"
        "WebhookConfig(url='http://127.0.0.1:9/hook')\n"
        "MetricsServer(Registry(), port=0)\n")
    # "email" is left out here only because bundle.py's `from importlib import metadata`
    # loads it; the HTTP modules must not be there.
    assert [m for m in loaded if m != "email"] == []
    # actions and metrics on their own do not pull in email either
    assert _modules_loaded_by("import jenga_edge.actions, jenga_edge.metrics") == []
    # ... and the lazy names still resolve to the real classes
    loaded = _modules_loaded_by(
        "from jenga_edge.actions import WebhookAction\nfrom jenga_edge.webhook import WebhookAction as W\n"
        "assert WebhookAction is W\n")
    assert {"urllib.request", "http.client", "jenga_edge.webhook"} <= set(loaded)
