"""The lab's guards: `ip` only inside its own namespaces, no shared networks, processes ended by PID."""

from __future__ import annotations

import ipaddress
import os
import sys
import time

import pytest

from lab import safety, scenario
from lab.errors import LabError
from lab.procs import Processes, in_netns
from lab.topology import Topology

SC = scenario.parse({
    "name": "t", "duration_s": 10, "hosts": {
        "victim": {"role": "victim", "address": "10.77.0.10", "services": ["http"]},
        "office": {"role": "benign", "address": "10.77.0.21"}},
    "steps": [{"name": "w", "tool": "web", "host": "office", "duration": 5}],
})  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [("link", "add", "x", "type", "dummy"), ("-n", "other-ns", "link", "show"), ("netns", "del", "other"),
     ("route", "add", "default", "via", "10.77.0.1"), ("-n", "jlZZZZ-br", "link")],
)  # fmt: skip
def test_ip_refuses_anything_outside_the_labs_namespaces(args):
    topo = Topology(SC, run_id="abcd")
    with pytest.raises(LabError, match="outside the lab's namespaces"):
        topo._ip(*args)


def test_namespaces_and_addresses_come_from_the_scenario():
    topo = Topology(SC, run_id="abcd")
    assert topo.bridge_ns == "jlabcd-br"
    assert topo.hosts["office"].netns == "jlabcd-office" and topo.hosts["office"].mac == "02:4a:4c:4d:00:15"
    assert len("v-" + "a" * 10) <= 15  # the longest host name still fits an interface name


def test_a_lab_network_that_overlaps_the_hosts_is_refused():
    host = [ipaddress.ip_network("10.77.0.0/16"), ipaddress.ip_network("fe80::/64")]
    with pytest.raises(LabError, match=r"the lab's subnet 10\.77\.0\.0/24 overlaps the host's 10\.77\.0\.0/16"):
        safety.check_no_overlap([("the lab's subnet", ipaddress.ip_network("10.77.0.0/24"))], host)
    safety.check_no_overlap([("the lab's subnet", ipaddress.ip_network("10.78.0.0/24"))], host)


def test_differences_name_what_changed():
    before = {"routes": ["a"], "nft_sha256": "x"}
    assert safety.differences(before, {"routes": ["a"], "nft_sha256": "x"}) == []
    assert safety.differences(before, {"routes": ["a", "b"], "nft_sha256": "x"}) == [
        "routes: before ['a'], after ['a', 'b']"
    ]


def test_in_netns_prefixes_only_when_asked():
    assert in_netns(None, ["true"]) == ["true"]
    assert in_netns("jlabcd-office", ["true"]) == ["ip", "netns", "exec", "jlabcd-office", "true"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie waiting for its parent is not running
        return fh.read().split(")")[-1].split()[0] != "Z"


def test_stop_ends_the_process_and_the_children_it_started(tmp_path):
    procs = Processes(tmp_path / "logs")
    code = ("import subprocess,sys,time\n"
            "c=subprocess.Popen(['sleep','30']);print(c.pid,flush=True);time.sleep(30)")  # fmt: skip
    proc = procs.start("sleeper", [sys.executable, "-c", code], None)
    deadline = time.monotonic() + 10
    while not proc.log.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(proc.log.read_text().split()[0])
    assert alive(proc.pid) and alive(child)
    rc = procs.stop(proc, grace=2)
    assert rc is not None and rc < 0 and proc.stopped_by_lab
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child) and procs.running == []


def test_a_process_that_ended_by_itself_is_not_signalled(tmp_path):
    procs = Processes(tmp_path / "logs")
    proc = procs.start("quick", [sys.executable, "-c", "print('hi')"], None)
    proc.popen.wait(10)
    assert procs.stop(proc) == 0 and not proc.stopped_by_lab
    assert proc.log.read_text() == "hi\n"
