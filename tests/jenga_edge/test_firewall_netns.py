"""`jenga-edge firewall init` and a real block, inside throwaway network namespaces.

Two namespaces joined by a veth pair: "gw" (10.213.0.1, the gateway the agent
protects) and "peer" (10.213.0.2). nft runs only inside "gw", through a wrapper
given as the action's nft_path, so the host's own ruleset is never read or
changed. A TCP connection from peer to gw works before the block and fails
after it. Needs root, `ip` with netns support and `nft`; skipped otherwise. Both
namespaces are removed at the end, and every process started is bounded in time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from jenga_edge.actions.firewall import Config, FirewallAction
from jenga_edge.cli import main as edge_cli

GW, PEER = "10.213.0.1", "10.213.0.2"
PORT = 18_080


def _sh(*argv: str, timeout: float = 10.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=check)


def _netns_usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not shutil.which("ip") or not shutil.which("nft"):
        return "needs ip and nft"
    probe = f"jenga-probe-{os.getpid()}"
    if _sh("ip", "netns", "add", probe, check=False).returncode != 0:
        return "cannot create a network namespace here"
    _sh("ip", "netns", "del", probe, check=False)
    return None


_WHY_NOT = _netns_usable()
needs_netns = pytest.mark.skipif(_WHY_NOT is not None, reason=str(_WHY_NOT))


@pytest.fixture
def namespaces(tmp_path):
    tag = f"{os.getpid()}"
    gw, peer = f"jenga-gw-{tag}", f"jenga-peer-{tag}"
    try:
        _sh("ip", "netns", "add", gw)
        _sh("ip", "netns", "add", peer)
        _sh("ip", "-n", gw, "link", "add", "veth-gw", "type", "veth", "peer", "name", "veth-peer", "netns", peer)
        _sh("ip", "-n", gw, "addr", "add", f"{GW}/24", "dev", "veth-gw")
        _sh("ip", "-n", peer, "addr", "add", f"{PEER}/24", "dev", "veth-peer")
        for ns, dev in ((gw, "veth-gw"), (peer, "veth-peer")):
            _sh("ip", "-n", ns, "link", "set", dev, "up")
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
        wrapper = tmp_path / "nft-in-gw"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {gw} nft "$@"\n')
        wrapper.chmod(0o755)
        yield gw, peer, wrapper
    finally:
        _sh("ip", "netns", "del", peer, check=False)
        _sh("ip", "netns", "del", gw, check=False)


def _listen(gw: str) -> subprocess.Popen[str]:
    """A TCP listener in gw that accepts for at most 20 s, then exits by itself."""
    code = (
        "import socket,time\n"
        f"s=socket.create_server(('{GW}',{PORT}));s.settimeout(0.5);end=time.time()+20\n"
        "print('ready',flush=True)\n"
        "while time.time()<end:\n"
        "    try: c,_=s.accept(); c.close()\n"
        "    except OSError: pass\n"
    )
    proc = subprocess.Popen(["ip", "netns", "exec", gw, sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _connects(peer: str) -> bool:
    code = (
        "import socket\ntry:\n"
        f"    socket.create_connection(('{GW}',{PORT}),timeout=1).close();print('yes')\n"
        "except OSError:\n    print('no')\n"
    )
    return _sh("ip", "netns", "exec", peer, sys.executable, "-c", code, timeout=10).stdout.strip() == "yes"


@needs_netns
def test_init_then_a_real_block_inside_a_throwaway_namespace(namespaces, tmp_path):
    gw, peer, wrapper = namespaces
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "agent": {"bundle": str(tmp_path / "unused")},
                "sources": [{"type": "stdin"}],
                "actions": {"block": {"type": "firewall", "dry_run": False, "nft_path": str(wrapper), "timeout_s": 60}},
            }
        )
    )
    runner = CliRunner()
    for _ in range(2):  # idempotent: the second run changes nothing
        res = runner.invoke(edge_cli, ["firewall", "init", "--config", str(cfg)])
        assert res.exit_code == 0, res.output
    ruleset = _sh("ip", "netns", "exec", gw, "nft", "list", "table", "inet", "jenga").stdout
    assert ruleset.count("ip saddr @blocklist drop") == 2 and ruleset.count("ip6 saddr @blocklist6 drop") == 2
    assert "flags timeout" in ruleset and "hook input priority filter - 10" in ruleset

    listener = _listen(gw)
    try:
        assert _connects(peer), "peer cannot reach gw before any block"
        out = FirewallAction(Config(dry_run=False, nft_path=str(wrapper), timeout_s=60)).run({"src_ip": PEER})
        assert out["result"] == "ok" and out["reason"] == f"blocked {PEER} for 60s", out
        assert PEER in _sh("ip", "netns", "exec", gw, "nft", "list", "set", "inet", "jenga", "blocklist").stdout
        assert not _connects(peer), "the block did not stop peer's connection"
    finally:
        listener.kill()
        listener.wait(5)


@needs_netns
def test_an_action_whose_set_is_missing_fails_visibly_and_ensure_creates_it(namespaces, tmp_path):
    _, _, wrapper = namespaces
    action = FirewallAction(Config(dry_run=False, nft_path=str(wrapper)))
    out = action.run({"src_ip": PEER})
    assert out["result"] == "failed" and "nft exited with status 1" in out["reason"]
    ensured = FirewallAction(Config(dry_run=False, nft_path=str(wrapper), ensure=True))
    assert all(o["result"] == "ok" for o in ensured.init())
    assert action.run({"src_ip": PEER})["result"] == "ok"


def test_dry_run_prints_the_commands_and_runs_nothing(tmp_path):
    cfg = Path(tmp_path / "agent.yaml")
    cfg.write_text(
        yaml.safe_dump({"agent": {"bundle": "b"}, "sources": [{"type": "stdin"}], "actions": {"firewall": {}}})
    )
    res = CliRunner().invoke(edge_cli, ["firewall", "init", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == "firewall: would run: nft add table inet jenga"
    assert "firewall: would run: nft add rule inet jenga forward ip saddr @blocklist drop" in res.output


def test_a_live_action_whose_tool_is_missing_is_refused_before_it_runs(tmp_path):
    cfg = Path(tmp_path / "agent.yaml")
    live = {"type": "firewall", "dry_run": False, "nft_path": "/nonexistent/nft"}
    cfg.write_text(yaml.safe_dump({"agent": {"bundle": "b"}, "sources": [{"type": "stdin"}], "actions": {"fw": live}}))
    res = CliRunner().invoke(edge_cli, ["firewall", "init", "--config", str(cfg)])
    assert res.exit_code == 2
    assert "actions.fw.nft_path: '/nonexistent/nft' not found or not executable; install it" in res.output
    res = CliRunner().invoke(edge_cli, ["firewall", "init", "--config", str(cfg), "--dry-run"])
    assert res.exit_code == 0 and "would run" in res.output  # --dry-run needs no tool


def test_a_family_that_cannot_filter_by_address_is_refused():
    with pytest.raises(ValueError, match="family: expected one of inet, ip, ip6"):
        Config(family="bridge")


@needs_netns
def test_a_block_lifts_by_itself_when_the_set_elements_timeout_ends(namespaces, tmp_path):
    """The attacker is cut off, then gets through again once the element's timeout (2 s) has passed."""
    gw, peer, wrapper = namespaces
    ensured = FirewallAction(Config(dry_run=False, nft_path=str(wrapper), ensure=True, timeout_s=2))
    assert all(o["result"] == "ok" for o in ensured.init())
    listener = _listen(gw)
    try:
        assert _connects(peer)
        out = ensured.run({"src_ip": PEER})
        assert out["result"] == "ok" and out["reason"] == f"blocked {PEER} for 2s", out
        blocked_at = time.monotonic()
        assert not _connects(peer), "the block did not stop peer's connection"
        deadline = blocked_at + 10
        while not _connects(peer):
            assert time.monotonic() < deadline, "the block was still in force 10 s after a 2 s timeout"
            time.sleep(0.3)
        assert time.monotonic() - blocked_at >= 1.5  # lifted by the timeout, not at once
        assert PEER not in _sh("ip", "netns", "exec", gw, "nft", "list", "set", "inet", "jenga", "blocklist").stdout
    finally:
        listener.kill()
        listener.wait(5)
