"""Tests for jenga_edge/actions/: firewall, exec and webhook actions, rate limiting, build_actions."""

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
from types import SimpleNamespace

import pytest

from jenga_edge import actions as act
from jenga_edge.actions import KINDS, build_actions, close_actions
from jenga_edge.actions.background import BackgroundAction
from jenga_edge.actions.exec import Config as ExecConfig
from jenga_edge.actions.exec import ExecAction
from jenga_edge.actions.firewall import Config as FirewallConfig
from jenga_edge.actions.firewall import FirewallAction
from jenga_edge.actions.rate_limit import RateLimitConfig, RateLimiter
from jenga_edge.actions.webhook import Config as WebhookConfig
from jenga_edge.actions.webhook import WebhookAction
from jenga_edge.config import agent_config_from_dict
from jenga_edge.contract.errors import ConfigError
from jenga_edge.contract.typed import Invalid, convert, parse_yaml

IDENT_MSG = "expected a name of 1-32 letters, digits, '_' or '-', got "
ABSOLUTE_MSG = "expected an absolute path (the agent's working directory is not fixed), got "
ALLOWED = "allowed: src_ip, dest_ip, dest_port, task, rule, priority, score, threshold"


def load(cls, data):
    """A Config from plain data, as a config file is read (types and bounds checked)."""
    return convert(cls, data, source="cfg")


def load_actions(raw) -> dict:
    """The `actions:` mapping of an agent config, through the agent's own loader."""
    cfg = agent_config_from_dict(
        {"agent": {"bundle": "bundle"}, "sources": [{"type": "stdin"}], "actions": raw}, source="cfg"
    )
    return cfg.actions


def config_error(fn, *args) -> str:
    with pytest.raises(ConfigError) as exc:
        fn(*args)
    return str(exc.value)


def invalid(fn, **kwargs) -> Invalid:
    with pytest.raises(Invalid) as exc:
        fn(**kwargs)
    return exc.value


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
    a = {
        "timestamp": "2024-05-01T12:00:00Z",
        "rule": "ssh_block",
        "priority": "critical",
        "task": "threat",
        "score": 0.97,
        "threshold": 0.8,
        "src_ip": "203.0.113.7",
        "dest_ip": "10.0.0.5",
        "dest_port": 22,
        "fields": {"user": "root"},
    }
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
    """subprocess.Popen that records calls and reports success."""
    calls = []

    class FakePopen:
        pid, returncode = 999_999_999, 0

        def __init__(self, argv, **kwargs):
            calls.append((argv, kwargs))

        def communicate(self, timeout=None):
            calls[-1][1]["timeout"] = timeout
            return b"", b""

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
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
        f"sys.exit({exit_code})\n"
    )
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


@pytest.mark.parametrize("value", ["1.2.3.4; rm -rf /", "$(id)", "`id`", "1.2.3.4\n5.6.7.8", "10.0.0.0/8", 12345, None])
def test_invalid_addresses_say_invalid_address(no_subprocess, value):
    out = FirewallAction().run(alert(src_ip=value))
    assert out["result"] == "skipped"
    assert out["reason"].startswith("invalid address")


@pytest.mark.parametrize(
    "value,kind",
    [
        ("::1", "loopback"),
        ("127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("fe80::1", "link-local"),
        ("::ffff:127.0.0.1", "loopback"),
    ],
)
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
    action = FirewallAction(FirewallConfig(allowlist=["10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "198.51.100.7/24"]))
    for ip in ["10.1.2.3", "192.0.2.1", "2001:db8::5", "198.51.100.200", "::ffff:10.9.9.9"]:
        out = action.run(alert(src_ip=ip))
        assert out["result"] == "skipped", ip
        assert out["reason"].startswith("allowlisted"), ip
        assert out["argv"] is None
    out = action.run(alert(src_ip="192.0.2.2"))
    assert out["result"] == "dry_run"


def test_allowlist_entries_are_checked_at_config_time():
    msg = "expected an address or network like '10.0.0.0/8', got "
    exc = invalid(FirewallConfig, allowlist=["10.0.0.0/8", "10.0.0.0/33"])
    assert (exc.key, exc.message) == ("allowlist[1]", msg + "'10.0.0.0/33'")
    exc = invalid(FirewallConfig, allowlist=["not-an-ip"])
    assert (exc.key, exc.message) == ("allowlist[0]", msg + "'not-an-ip'")
    assert (
        config_error(load, FirewallConfig, {"allowlist": ["10.0.0.0/8", "10.0.0.0/33"]})
        == f"cfg: allowlist[1]: {msg}'10.0.0.0/33'"
    )
    assert config_error(load, FirewallConfig, {"allowlist": ["not-an-ip"]}) == f"cfg: allowlist[0]: {msg}'not-an-ip'"
    assert (
        config_error(load, FirewallConfig, {"allowlist": ["10.0.0.0/8", 5]})
        == "cfg: allowlist[1]: expected a string, got int 5"
    )


# --- firewall: argv ---------------------------------------------------------------------------


def test_nft_ipv4_dry_run_by_default(no_subprocess):
    out = FirewallAction().run(alert())
    assert out["dry_run"] is True
    assert out["result"] == "dry_run"
    assert out["target"] == "inet jenga blocklist"
    assert out["argv"] == ["nft", "add", "element", "inet", "jenga", "blocklist", "{ 203.0.113.7 timeout 3600s }"]


def test_nft_ipv6_goes_to_set6_in_canonical_form(no_subprocess):
    out = FirewallAction().run(alert(src_ip="2001:DB8:0:0::0001"))
    assert out["result"] == "dry_run"
    assert out["target"] == "inet jenga blocklist6"
    assert out["argv"] == ["nft", "add", "element", "inet", "jenga", "blocklist6", "{ 2001:db8::1 timeout 3600s }"]


def test_nft_custom_names_field_and_timeout(no_subprocess):
    cfg = FirewallConfig(
        family="ip",
        table="edge_fw",
        set="bad-v4",
        set6="bad-v6",
        ip_field="dest_ip",
        timeout_s=60,
        nft_path="/usr/sbin/nft",
    )
    out = FirewallAction(cfg).run(alert(dest_ip="198.51.100.9"))
    assert out["argv"] == ["/usr/sbin/nft", "add", "element", "ip", "edge_fw", "bad-v4", "{ 198.51.100.9 timeout 60s }"]
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


@pytest.mark.parametrize(
    "key,value",
    [
        ("table", "jenga; drop"),
        ("set", ""),
        ("family", "in et"),
        ("set6", "x" * 33),
        ("ipset", "a/b"),
        ("ipset6", "$(id)"),
        ("table", 5),
    ],
)
def test_firewall_names_must_be_identifiers(key, value):
    exc = invalid(FirewallConfig, **{key: value})
    assert (exc.key, exc.message) == (key, IDENT_MSG + repr(value))
    # through the loader: the path names the action (a non-string is refused as a type error)
    expected = IDENT_MSG + repr(value) if isinstance(value, str) else "expected a string, got int 5"
    assert config_error(load_actions, {"firewall": {key: value}}) == f"cfg: actions.firewall.{key}: {expected}"
    assert config_error(load, FirewallConfig, {key: value}) == f"cfg: {key}: {expected}"


def test_firewall_config_via_typed_loader():
    cfg = load(FirewallConfig, parse_yaml("backend: ipset\ntimeout_s: 120\nallowlist: ['10.0.0.0/8']\n"))
    assert cfg.backend == "ipset" and cfg.timeout_s == 120 and cfg.dry_run is True
    assert cfg.allowlist == ["10.0.0.0/8"] and cfg.kind == "firewall"
    assert config_error(load, FirewallConfig, {"timeout_s": -1}) == "cfg: timeout_s: expected a value >= 0, got -1"
    assert (
        config_error(load, FirewallConfig, {"timeout_s": 2147484})
        == "cfg: timeout_s: expected a value <= 2147483, got 2147484"
    )
    assert (
        config_error(load, FirewallConfig, {"command_timeout_s": 0})
        == "cfg: command_timeout_s: expected a value >= 0.1, got 0"
    )
    assert (
        config_error(load, FirewallConfig, {"backend": "iptables"})
        == "cfg: backend: expected one of 'nftables', 'ipset', got str 'iptables' (did you mean 'nftables'?)"
    )
    exc = invalid(FirewallConfig, nft_path="bin/nft")
    assert (exc.key, exc.message) == ("nft_path", ABSOLUTE_MSG + "'bin/nft'")
    assert config_error(load, FirewallConfig, {"nft_path": "bin/nft"}) == f"cfg: nft_path: {ABSOLUTE_MSG}'bin/nft'"
    assert (
        config_error(load, FirewallConfig, {"ipset_path": " ipset"})
        == "cfg: ipset_path: expected a program name or absolute path, got ' ipset'"
    )
    assert config_error(load, FirewallConfig, {"ip_field": ""}) == "cfg: ip_field: expected an alert key, got ''"


def test_real_run_calls_subprocess_without_shell(recording_subprocess):
    out = FirewallAction(FirewallConfig(dry_run=False, command_timeout_s=2.5)).run(alert())
    assert out["result"] == "ok" and out["dry_run"] is False
    ((argv, kwargs),) = recording_subprocess
    assert argv == out["argv"]
    assert kwargs["shell"] is False
    assert kwargs["timeout"] == 2.5
    assert kwargs["stdout"] == kwargs["stderr"] == subprocess.PIPE and kwargs["stdin"] == subprocess.DEVNULL


# --- firewall: real execution with a fake nft -------------------------------------------------


def test_fake_nft_receives_the_element_as_one_argument(tmp_path):
    nft, log = fake_tool(tmp_path)
    out = FirewallAction(FirewallConfig(dry_run=False, nft_path=str(nft))).run(alert())
    assert out["result"] == "ok", out
    assert "blocked 203.0.113.7" in out["reason"]
    assert json.loads(log.read_text()) == [
        "add",
        "element",
        "inet",
        "jenga",
        "blocklist",
        "{ 203.0.113.7 timeout 3600s }",
    ]


def test_fake_ipset_receives_exact_argv(tmp_path):
    ipset, log = fake_tool(tmp_path, "fake-ipset")
    out = FirewallAction(FirewallConfig(backend="ipset", dry_run=False, ipset_path=str(ipset))).run(
        alert(src_ip="2001:db8::9")
    )
    assert out["result"] == "ok"
    assert json.loads(log.read_text()) == ["add", "jenga-block6", "2001:db8::9", "timeout", "3600", "-exist"]


def test_failing_nft_reports_first_stderr_line(tmp_path):
    nft, log = fake_tool(
        tmp_path, exit_code=1, stderr="Error: No such file or directory\nadd element inet jenga blocklist\n"
    )
    out = FirewallAction(FirewallConfig(dry_run=False, nft_path=str(nft))).run(alert())
    assert out["result"] == "failed"
    assert out["reason"].endswith("Error: No such file or directory")
    assert "status 1" in out["reason"]
    assert log.exists()


def test_missing_nft_is_failed_not_raised(tmp_path):
    out = FirewallAction(FirewallConfig(dry_run=False, nft_path=str(tmp_path / "nope"))).run(alert())
    assert out["result"] == "failed"
    assert out["reason"].startswith("nft not found")
    out = FirewallAction(FirewallConfig(backend="ipset", dry_run=False, ipset_path=str(tmp_path / "nope"))).run(alert())
    assert out["reason"].startswith("ipset not found")


def test_hung_command_times_out(tmp_path):
    script = tmp_path / "slow-nft"
    script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    script.chmod(0o755)
    out = FirewallAction(FirewallConfig(dry_run=False, nft_path=str(script), command_timeout_s=0.3)).run(alert())
    assert out["result"] == "failed"
    assert "timed out" in out["reason"]


# --- exec ----------------------------------------------------------------------------------

TEMPLATE = [
    "/usr/local/bin/quarantine",
    "--ip",
    "{src_ip}",
    "--score",
    "{score}",
    "--to={dest_ip}:{dest_port}",
    "{rule}/{task}/{priority}",
    "t={threshold}",
    "{{literal}}",
]


def test_exec_substitutes_whole_and_inner_tokens(no_subprocess):
    out = ExecAction(ExecConfig(argv=TEMPLATE)).run(alert(dest_ip="2001:DB8::5"))
    assert out["result"] == "dry_run" and out["dry_run"] is True
    assert out["target"] == "/usr/local/bin/quarantine"
    assert out["argv"] == [
        "/usr/local/bin/quarantine",
        "--ip",
        "203.0.113.7",
        "--score",
        "0.97",
        "--to=2001:db8::5:22",
        "ssh_block/threat/critical",
        "t=0.8",
        "{literal}",
    ]


def test_exec_only_checks_values_it_uses(no_subprocess):
    out = ExecAction(ExecConfig(argv=["/bin/notify", "{rule}"])).run(alert(src_ip="$(id)", dest_port=None))
    assert out["argv"] == ["/bin/notify", "ssh_block"]


@pytest.mark.parametrize(
    "key,value",
    [
        ("src_ip", "1.2.3.4; rm -rf /"),
        ("src_ip", "$(id)"),
        ("dest_ip", "10.0.0.0/8"),
        ("src_ip", 12345),
        ("src_ip", None),
        ("dest_port", 70000),
        ("dest_port", -1),
        ("dest_port", "22; reboot"),
        ("dest_port", True),
        ("dest_port", 22.5),
        ("score", "0.9"),
        ("score", float("nan")),
        ("threshold", float("inf")),
        ("score", True),
        ("rule", "ssh block"),
        ("rule", "a;b"),
        ("rule", "-rf"),
        ("task", "`id`"),
        ("priority", ""),
        ("priority", 3),
        ("rule", "x" * 200),
        ("task", "a\nb"),
    ],
)
def test_exec_bad_values_skip_without_running(no_subprocess, key, value):
    out = ExecAction(ExecConfig(argv=TEMPLATE, dry_run=False)).run(alert(**{key: value}))
    assert out["result"] == "skipped"
    assert out["argv"] is None
    assert key in out["reason"]
    assert no_subprocess == []


def test_exec_port_accepts_digit_string(no_subprocess):
    out = ExecAction(ExecConfig(argv=["/bin/x", "{dest_port}"])).run(alert(dest_port="0443"))
    assert out["argv"] == ["/bin/x", "443"]


@pytest.mark.parametrize(
    "argv,key,message",
    [
        (["/bin/x", "{fields}"], "argv[1]", f"unknown placeholder {{fields}} in '{{fields}}'; {ALLOWED}"),
        (["/bin/x", "--{user}"], "argv[1]", f"unknown placeholder {{user}} in '--{{user}}'; {ALLOWED}"),
        (
            ["/bin/x", "{src_ip.__class__}"],
            "argv[1]",
            f"unknown placeholder {{src_ip.__class__}} in '{{src_ip.__class__}}'; {ALLOWED}",
        ),
        (["/bin/x", "{0}"], "argv[1]", f"unknown placeholder {{0}} in '{{0}}'; {ALLOWED}"),
        (["/bin/x", "{}"], "argv[1]", f"unknown placeholder {{}} in '{{}}'; {ALLOWED}"),
        (
            ["/bin/x", "{score:.2f}"],
            "argv[1]",
            "placeholder {score} in '{score:.2f}' may not have a conversion or format spec",
        ),
        (
            ["/bin/x", "{src_ip!r}"],
            "argv[1]",
            "placeholder {src_ip} in '{src_ip!r}' may not have a conversion or format spec",
        ),
        (
            ["/bin/x", "{src_ip"],
            "argv[1]",
            "bad template '{src_ip': expected '}' before end of string (write literal braces as '{{' and '}}')",
        ),
        (["relative/tool", "{src_ip}"], "argv[0]", ABSOLUTE_MSG + "'relative/tool'"),
        (["quarantine", "{src_ip}"], "argv[0]", ABSOLUTE_MSG + "'quarantine'"),
        (["/usr/bin/{rule}"], "argv[0]", "the program may not contain a placeholder, got '/usr/bin/{rule}'"),
        (["/bin/x", "a\0b"], "argv[1]", "NUL character in 'a\\x00b'"),
    ],
)
def test_exec_template_errors_at_config_time(argv, key, message):
    exc = invalid(ExecConfig, argv=argv)
    assert (exc.key, exc.message) == (key, message)
    assert config_error(load, ExecConfig, {"argv": argv}) == f"cfg: {key}: {message}"
    assert config_error(load_actions, {"q": {"type": "exec", "argv": argv}}) == f"cfg: actions.q.{key}: {message}"


def test_exec_argv_types_and_bounds_at_load_time():
    # Types and bounds are checked by the loader (direct construction does not check them).
    assert config_error(load, ExecConfig, {"argv": []}) == "cfg: argv: expected a non-empty value"
    assert config_error(load, ExecConfig, {"argv": ["/bin/x", 5]}) == "cfg: argv[1]: expected a string, got int 5"
    assert config_error(load, ExecConfig, {}).startswith("cfg: argv: missing required key, expected a list")
    assert (
        config_error(load, ExecConfig, {"argv": ["/bin/x"], "timeout_s": 0.01})
        == "cfg: timeout_s: expected a value >= 0.1, got 0.01"
    )
    exc = invalid(ExecConfig, argv=["/bin/x", 5])  # a non-string item still refused on construction
    assert (exc.key, exc.message) == ("argv[1]", "expected a string, got 5")


def test_exec_unknown_placeholder_is_named():
    exc = invalid(ExecConfig, argv=["/bin/x", "--host={hostname}"])
    assert exc.key == "argv[1]"
    assert "{hostname}" in exc.message
    assert "src_ip" in exc.message  # lists the allowed names
    assert exc.message == f"unknown placeholder {{hostname}} in '--host={{hostname}}'; {ALLOWED}"


def test_exec_real_run_passes_arguments_verbatim(tmp_path):
    tool, log = fake_tool(tmp_path, "quarantine")
    pwned = tmp_path / "pwned"
    literal = f"a;b $(id) `id` | x > {pwned} && touch {pwned}; 'q' \"dq\" *"
    out = ExecAction(ExecConfig(argv=[str(tool), "--ip={src_ip}", literal, "{score}"], dry_run=False)).run(alert())
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
            def do_POST(self):
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
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
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
        assert len(receiver.bodies) == 2  # delivered once
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


@pytest.mark.parametrize(
    "url,message",
    [
        ("ftp://example.com/x", "expected an http:// or https:// URL, got scheme 'ftp' in 'ftp://example.com/x'"),
        ("file:///etc/passwd", "expected an http:// or https:// URL, got scheme 'file' in 'file:///etc/passwd'"),
        ("example.com/hook", "expected an http:// or https:// URL, got scheme '(none)' in 'example.com/hook'"),
        ("http://", "expected a host in 'http://'"),
        ("http://exa mple.com/", "expected an http(s) URL without spaces, got 'http://exa mple.com/'"),
        ("https://host:99999/", "bad port in 'https://host:99999/'"),
        ("", "expected an http(s) URL without spaces, got ''"),
        ("javascript:x", "expected an http:// or https:// URL, got scheme 'javascript' in 'javascript:x'"),
    ],
)
def test_webhook_url_must_be_http(url, message):
    exc = invalid(WebhookConfig, url=url)
    assert (exc.key, exc.message) == ("url", message)
    assert config_error(load_actions, {"webhook": {"url": url}}) == f"cfg: actions.webhook.url: {message}"


def test_webhook_header_injection_rejected():
    exc = invalid(WebhookConfig, url="https://example.com/", headers={"X-A": "b\r\nX-Evil: 1"})
    assert (exc.key, exc.message) == ("headers.X-A", "value must be a single-line string")
    exc = invalid(WebhookConfig, url="https://example.com/", headers={"Bad Name": "v"})
    assert (exc.key, exc.message) == ("headers", "invalid header name 'Bad Name'")
    assert (
        config_error(load, WebhookConfig, {"url": "https://example.com/", "headers": {"X-A": "b\r\nX-Evil: 1"}})
        == "cfg: headers.X-A: value must be a single-line string"
    )
    assert (
        config_error(load, WebhookConfig, {"url": "https://example.com/", "headers": {"Bad Name": "v"}})
        == "cfg: headers: invalid header name 'Bad Name'"
    )
    assert (
        config_error(load, WebhookConfig, {"url": "https://example.com/", "headers": {"X-A": 5}})
        == "cfg: headers.X-A: expected a string, got int 5"
    )


def test_webhook_config_bounds_at_load_time(tmp_path):
    url = "http://127.0.0.1:9/hook"
    cfg = load(WebhookConfig, {"url": url, "spool_dir": str(tmp_path), "max_retries": 0})
    assert cfg.kind == "webhook" and cfg.max_retries == 0 and cfg.timeout_s == 5.0
    assert (
        config_error(load, WebhookConfig, {"url": url, "max_retries": 11})
        == "cfg: max_retries: expected a value <= 10, got 11"
    )
    assert (
        config_error(load, WebhookConfig, {"url": url, "timeout_s": 0})
        == "cfg: timeout_s: expected a value >= 0.1, got 0"
    )
    assert (
        config_error(load, WebhookConfig, {"url": url, "max_spool_bytes": 1023})
        == "cfg: max_spool_bytes: expected a value >= 1024, got 1023"
    )
    exc = invalid(WebhookConfig, url=url, spool_name="../x")
    assert (exc.key, exc.message) == ("spool_name", IDENT_MSG + "'../x'")
    exc = invalid(WebhookConfig, url=url, spool_dir="")
    assert (exc.key, exc.message) == ("spool_dir", "expected a directory path, got ''")


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
    clock.now += 19.9  # one token comes back every 20 s
    assert rl.allow() is False
    clock.now += 0.1
    assert rl.allow() is True
    assert rl.allow() is False
    clock.now += 3600
    assert [rl.allow() for _ in range(4)] == [True, True, True, False]  # never more than the burst
    clock.now -= 500  # a clock stepping back refills nothing
    assert rl.allow() is False


def test_rate_limiter_cost_takes_all_or_nothing():
    clock = FakeClock()
    rl = RateLimiter(3, 60.0, clock=clock)
    assert rl.allow(2.0) is True
    assert rl.allow(2.0) is False  # only 1 left: refused, and none taken
    assert rl.allow(1.0) is True
    assert rl.allow(1.0) is False


def test_rate_limiter_validation_and_config():
    for bad, key in [
        ((0, 1.0), "max_actions"),
        ((1, 0), "per_seconds"),
        ((1, -5), "per_seconds"),
        ((True, 1.0), "max_actions"),
        ((1.5, 1.0), "max_actions"),
        ((1, float("nan")), "per_seconds"),
    ]:
        with pytest.raises(ConfigError, match=rf"^rate_limit\.{key}: expected "):
            RateLimiter(*bad)
    clock = FakeClock()
    cfg = load(RateLimitConfig, {"max_actions": 2, "per_seconds": 10})
    rl = RateLimiter(cfg.max_actions, cfg.per_seconds, clock=clock)
    assert [rl.allow() for _ in range(3)] == [True, True, False]
    clock.now += 5
    assert [rl.allow() for _ in range(2)] == [True, False]
    assert config_error(load, RateLimitConfig, {"max_actions": 0}) == "cfg: max_actions: expected a value >= 1, got 0"
    assert (
        config_error(load, RateLimitConfig, {"max_actions": 1.5})
        == "cfg: max_actions: expected an integer, got float 1.5"
    )
    assert (
        config_error(load, RateLimitConfig, {"per_seconds": 0}) == "cfg: per_seconds: expected a value >= 0.001, got 0"
    )


# --- build_actions -------------------------------------------------------------------------


def test_action_kinds_are_registered():
    assert KINDS.names == ("firewall", "exec", "webhook")
    # A live command can hang: exec and firewall run behind the output stage unless dry-run.
    dry, live = FirewallConfig(), FirewallConfig(dry_run=False)
    assert (FirewallAction(dry).slow, FirewallAction(live).slow) == (False, True)
    assert (
        ExecAction(ExecConfig(argv=["/bin/x"])).slow,
        ExecAction(ExecConfig(argv=["/bin/x"], dry_run=False)).slow,
    ) == (
        False,
        True,
    )
    assert (WebhookAction.slow, BackgroundAction.slow) == (True, False)


def test_build_actions_from_agent_config(tmp_path):
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
    cfgs = load_actions(data)
    assert list(cfgs) == ["block", "firewall", "webhook", "quarantine"]
    assert [c.kind for c in cfgs.values()] == ["firewall", "firewall", "webhook", "exec"]
    actions = build_actions(cfgs)
    try:
        assert list(actions) == ["block", "firewall", "webhook", "quarantine"]
        assert isinstance(actions["block"], FirewallAction) and actions["block"].config.backend == "ipset"
        assert isinstance(actions["firewall"], FirewallAction) and actions["firewall"].config.backend == "nftables"
        hook_ = actions["webhook"]
        assert isinstance(hook_, BackgroundAction) and isinstance(hook_.action, WebhookAction)
        assert (hook_.name, hook_.type, hook_.target) == ("webhook", "webhook", "http://127.0.0.1:9/hook")
        assert hook_.action.spool_path == tmp_path / "webhook.jsonl"
        assert isinstance(actions["quarantine"], ExecAction)
        assert actions["quarantine"].config.argv == ["/usr/local/bin/quarantine", "{src_ip}"]
    finally:
        close_actions(actions)


def test_build_actions_from_objects_and_errors():
    actions = build_actions({"firewall": FirewallConfig(), "exec": ExecConfig(argv=["/bin/x"])})
    assert list(actions) == ["firewall", "exec"]
    assert isinstance(actions["firewall"], FirewallAction) and isinstance(actions["exec"], ExecAction)
    assert build_actions({}) == {}
    assert load_actions({}) == {}
    assert (
        config_error(load_actions, {"block": {"backend": "ipset"}})
        == "cfg: actions.block.type: missing required key, expected one of 'firewall', 'exec', 'webhook'"
    )
    assert (
        config_error(load_actions, {"block": {"type": "iptables"}})
        == "cfg: actions.block.type: expected one of 'firewall', 'exec', 'webhook', got str 'iptables'"
    )
    assert (
        config_error(load_actions, {"block": {"type": "firewall", "timeout_s": "long"}})
        == "cfg: actions.block.timeout_s: expected an integer, got str 'long'"
    )
    assert (
        config_error(load_actions, {"q": {"type": "exec", "argv": ["/bin/x", "{nope}"]}})
        == f"cfg: actions.q.argv[1]: unknown placeholder {{nope}} in '{{nope}}'; {ALLOWED}"
    )
    msg = config_error(load_actions, {"block": {"type": "firewall", "tabel": "x"}})
    assert msg.startswith(
        "cfg: actions.block.tabel: unknown key (did you mean 'table'?); expected one of: queue, backend, "
    )
    assert "ip_field" in msg and "allowlist" in msg


def test_build_actions_two_firewalls_under_two_names(no_subprocess):
    cfgs = load_actions(
        {
            "block_src": {"type": "firewall", "set": "v4only", "timeout_s": 60},
            "block_dst": {
                "type": "firewall",
                "backend": "ipset",
                "ip_field": "dest_ip",
                "ipset": "dst-block",
                "timeout_s": 0,
            },
        }
    )
    actions = build_actions(cfgs)
    assert list(actions) == ["block_src", "block_dst"]
    src, dst = actions["block_src"], actions["block_dst"]
    assert isinstance(src, FirewallAction) and isinstance(dst, FirewallAction) and src is not dst
    a = alert(dest_ip="198.51.100.9")
    assert src.run(a)["argv"] == ["nft", "add", "element", "inet", "jenga", "v4only", "{ 203.0.113.7 timeout 60s }"]
    assert dst.run(a)["argv"] == ["ipset", "add", "dst-block", "198.51.100.9", "-exist"]
    assert (src.target, dst.target) == ("inet jenga v4only", "dst-block")
    assert (src.addresses(a), dst.addresses(a)) == (["203.0.113.7"], ["198.51.100.9"])


def test_addresses_name_what_each_action_touches(tmp_path):
    a = alert(src_ip="203.0.113.7", dest_ip="198.51.100.9")
    assert FirewallAction().addresses(a) == ["203.0.113.7"]
    assert FirewallAction(FirewallConfig(ip_field="dest_ip")).addresses(a) == ["198.51.100.9"]
    assert FirewallAction(FirewallConfig(ip_field="peer")).addresses(a) == [None]
    assert ExecAction(ExecConfig(argv=["/bin/x"])).addresses(a) == ["203.0.113.7", "198.51.100.9"]
    assert ExecAction(ExecConfig(argv=["/bin/x"])).addresses({"rule": "r"}) == [None, None]
    webhook_ = hook(tmp_path, "http://127.0.0.1:9/hook")
    assert webhook_.addresses(a) == []
    wrapped = [
        BackgroundAction("hook", webhook_),
        BackgroundAction("fw", FirewallAction(FirewallConfig(ip_field="dest_ip"))),
    ]
    try:
        assert wrapped[0].addresses(a) == []
        assert wrapped[1].addresses(a) == ["198.51.100.9"]
    finally:
        for w in wrapped:
            w.close()


def test_build_actions_runs_the_webhook_on_a_worker(tmp_path, receiver):
    actions = build_actions(
        load_actions(
            {"notify": {"type": "webhook", "url": receiver.url, "timeout_s": 2.0, "spool_dir": str(tmp_path / "spool")}}
        )
    )
    bg = actions["notify"]
    assert isinstance(bg, BackgroundAction) and isinstance(bg.action, WebhookAction)
    assert bg.name == "notify"
    a = alert()
    assert bg.run(a) == {"type": "webhook", "target": receiver.url, "result": "queued"}
    a["rule"] = "changed"  # the worker holds its own copy
    close_actions(actions)  # finishes what is queued
    assert (bg.delivered, bg.failed) == (1, 0)
    assert [json.loads(b) for b in receiver.bodies] == [alert()]
    assert not bg.action.spool_path.exists()


def test_background_webhook_spools_what_it_cannot_deliver(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/hook"
    actions = build_actions(load_actions({"webhook": {"url": url, "max_retries": 0, "spool_dir": str(tmp_path)}}))
    bg = actions["webhook"]
    assert bg.run(alert(rule="lost"))["result"] == "queued"
    close_actions(actions)
    assert (bg.delivered, bg.failed) == (0, 1)
    assert bg.action.spooled() == 1
    assert json.loads(bg.action.spool_path.read_text())["rule"] == "lost"


# --- the agent running actions (Agent._act) ------------------------------------------------


def stub_agent(actions, limiter=None, allowlist=()):
    """An Agent with only what `_act` reads: its actions, rate limiter, allowlist, metrics."""
    from jenga_edge.agent import Agent
    from jenga_edge.failures import FailureLog
    from jenga_edge.metrics.agent import AgentMetrics
    from jenga_edge.rules import RuleEngine

    agent = Agent.__new__(Agent)  # no bundle, sources or sinks
    agent.pipe = SimpleNamespace(
        actions=actions, limiter=limiter or RateLimiter(1000, 1.0), rules=RuleEngine([], {}, list(allowlist))
    )
    agent.metrics = AgentMetrics()
    agent.logged = []
    agent.failures = FailureLog(agent.logged.append)
    return agent


def act_all(agent, a):
    """What the agent does for a rule that names every configured action."""
    a["actions"] = [agent._act(name, a, a.get("src_ip"), 0, []) for name in agent.pipe.actions]
    return a["actions"]


def test_agent_act_appends_outcomes_and_rate_limits(no_subprocess):
    clock = FakeClock()
    actions = build_actions({"block": FirewallConfig(), "notify": ExecConfig(argv=["/bin/notify", "{rule}"])})
    agent = stub_agent(actions, RateLimiter(3, 60, clock=clock))
    a1, a2 = alert(), alert(src_ip="$(id)")
    act_all(agent, a1)
    act_all(agent, a2)
    assert [o["result"] for o in a1["actions"]] == ["dry_run", "dry_run"]
    assert [o["name"] for o in a1["actions"]] == ["block", "notify"]
    assert [o["result"] for o in a2["actions"]] == ["skipped", "skipped"]
    assert [o["name"] for o in a2["actions"]] == ["block", "notify"]
    assert a2["actions"][0]["reason"].startswith("invalid address")
    assert a2["actions"][1] == {"type": "exec", "result": "skipped", "reason": "rate_limited", "name": "notify"}
    assert agent.metrics.actions.value(type="exec", result="skipped") == 1
    assert agent.metrics.actions.value(type="firewall", result="dry_run") == 1


def test_agent_act_contains_action_crashes():
    class Boom(FirewallAction):
        def run(self, alert):
            raise RuntimeError("kaput")

    agent = stub_agent({"b": Boom()})
    a = alert()
    (out,) = act_all(agent, a)
    assert out["result"] == "failed" and "kaput" in out["reason"]
    assert out == {"type": "firewall", "result": "failed", "reason": "RuntimeError: kaput", "name": "b"}
    assert a["actions"] == [out]
    # Not only in the alert record: counted per action and logged, once a minute at most.
    act_all(agent, alert())
    assert agent.metrics.action_failures.labelled() == {"b": 2}
    assert agent.logged == ["action b failed: RuntimeError: kaput"]
    assert "action_failed=2 (b=2)" in agent.metrics.stats_line()


def test_agent_allowlist_covers_what_each_action_touches(no_subprocess):
    actions = build_actions(
        {
            "block_dst": FirewallConfig(ip_field="dest_ip"),
            "notify": ExecConfig(argv=["/bin/notify", "{rule}"]),
            "block": FirewallConfig(),
        }
    )
    agent = stub_agent(actions, allowlist=["10.0.0.0/8"])
    outs = act_all(agent, alert())  # dest_ip 10.0.0.5 is allowlisted, src_ip is not
    assert [(o["name"], o["result"]) for o in outs] == [
        ("block_dst", "skipped"),
        ("notify", "skipped"),
        ("block", "dry_run"),
    ]
    assert outs[0]["reason"] == outs[1]["reason"] == "allowlisted"


def test_actions_module_has_no_heavy_imports():
    files = sorted(Path(act.__file__).parent.glob("*.py"))
    assert {f.name for f in files} >= {
        "__init__.py",
        "base.py",
        "firewall.py",
        "exec.py",
        "webhook.py",
        "rate_limit.py",
        "background.py",
    }
    for f in files:
        src = f.read_text()
        for banned in (
            "import torch",
            "from trainer",
            "import trainer",
            "from export",
            "import export",
            "shell=True",
            "os.system",
            "os.popen",
        ):
            assert banned not in src, f"{f.name}: {banned}"


HTTP_MODULES = ("http.server", "http.client", "urllib.request", "urllib.error", "jenga_edge.metrics.http")


def _modules_loaded_by(code: str) -> list[str]:
    probe = code + f"\nprint(sorted(m for m in {HTTP_MODULES!r} + ('email',) if m in sys.modules))"
    proc = subprocess.run(
        [sys.executable, "-c", "import sys\n" + probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    return eval(proc.stdout.strip().splitlines()[-1])


def test_agent_import_loads_no_http_modules():
    # http.server / urllib.request / http.client (and the email package behind them) cost
    # several MB of RSS: loaded only when a webhook or the metrics endpoint is configured.
    loaded = _modules_loaded_by(
        "import jenga_edge.agent, jenga_edge.cli\n"
        "from jenga_edge.actions import build_actions, firewall, webhook\n"
        "from jenga_edge.contract.typed import convert\n"
        "from jenga_edge.metrics.registry import Registry\n"
        "from jenga_edge.metrics.server import MetricsServer\n"
        "build_actions({'block': firewall.Config()})\n"
        "webhook.Config(url='http://127.0.0.1:9/hook')\n"
        "convert(webhook.Config, {'url': 'http://127.0.0.1:9/hook'})\n"
        "MetricsServer(Registry(), port=0)\n"
    )
    # "email" is left out here only because bundle.py's `from importlib import metadata`
    # may load it; the HTTP modules must not be there.
    assert [m for m in loaded if m != "email"] == []
    # actions and metrics on their own do not pull in email either
    assert _modules_loaded_by("import jenga_edge.actions, jenga_edge.metrics") == []
    # ... and building a webhook action loads the delivery code
    loaded = _modules_loaded_by(
        "from jenga_edge.actions import build_actions, webhook\n"
        "acts = build_actions({'hook': webhook.Config(url='http://127.0.0.1:9/hook')})\n"
        "assert type(acts['hook'].action) is webhook.WebhookAction\n"
    )
    assert {"urllib.request", "http.client"} <= set(loaded)


def test_two_webhook_actions_spool_to_their_own_files(tmp_path):
    from jenga_edge.actions import build_actions, close_actions
    from jenga_edge.config import agent_config_from_dict

    hooks = {
        "soc": {"type": "webhook", "url": "http://127.0.0.1:9/a", "spool_dir": str(tmp_path)},
        "partner": {"type": "webhook", "url": "http://127.0.0.1:9/b", "spool_dir": str(tmp_path)},
    }
    cfg = agent_config_from_dict({"agent": {"bundle": "b"}, "sources": [{"type": "stdin"}], "actions": hooks}, "cfg")
    actions = build_actions(cfg.actions)
    try:
        assert [a.action.spool_path for a in actions.values()] == [tmp_path / "soc.jsonl", tmp_path / "partner.jsonl"]
    finally:
        close_actions(actions)
