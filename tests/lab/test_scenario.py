"""Scenario files: what a valid one builds, and the key path of what is wrong in a bad one."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from lab import scenario
from lab.errors import LabError

SCENARIOS = Path(__file__).resolve().parents[2] / "lab" / "scenarios"

BASE = {
    "name": "t",
    "seed": 3,
    "subnet": "10.77.0.0/24",
    "duration_s": 100,
    "hosts": {
        "victim": {"role": "victim", "address": "10.77.0.10", "services": ["http", "ssh", "dns"]},
        "office": {"role": "benign", "address": "10.77.0.21"},
        "bad": {"role": "attacker", "address": "10.77.0.66"},
    },
    "steps": [
        {"name": "browse", "tool": "web", "host": "office", "duration": 90},
        {"name": "scan", "tool": "nmap", "host": "bad", "at": 10, "duration": 20},
        {"name": "guess", "tool": "hydra", "host": "bad", "at": 36, "duration": 20},
    ],
}


def with_change(path: str, value: object) -> dict:
    data = copy.deepcopy(BASE)
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


def error_of(data: dict) -> str:
    with pytest.raises(LabError) as exc:
        scenario.parse(data, "s.yaml")
    return str(exc.value)


@pytest.mark.parametrize("name", sorted(p.name for p in SCENARIOS.glob("*.yaml")))
def test_the_shipped_scenarios_load(name):
    sc = scenario.load(SCENARIOS / name)
    assert sc.victim == "victim"
    tools = {s.tool for s in sc.steps}
    assert {"web", "dns", "ssh", "ftp", "machine", "chatter"} <= tools
    assert "suricata" in sc.binaries() and "nginx" in sc.binaries()
    if name == "office.yaml":  # benign only: no attacker, no attack tool
        assert not any(h.role == "attacker" for h in sc.hosts.values())
        assert not any(s.role == "attack" for s in sc.steps) and "nmap" not in sc.binaries()
    else:
        assert {"nmap", "masscan", "hping3", "hydra", "slowloris", "iodine"} <= tools
        assert "nmap" in sc.binaries()


def test_a_valid_scenario_gives_typed_steps_and_seeds():
    sc = scenario.parse(BASE)
    assert [s.tool for s in sc.steps] == ["web", "nmap", "hydra"]
    assert sc.steps[1].scan == "syn" and sc.steps[1].rate == 300
    assert [sc.step_seed(i) for i in range(3)] == [3000, 3001, 3002]
    assert scenario.parse(with_change("steps.1", {**BASE["steps"][1], "seed": 42})).step_seed(1) == 42


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("steps.1.tool", "nmapp", "s.yaml: steps[1].tool: expected one of"),
        ("steps.1.scan", "xmas", "s.yaml: steps[1].scan: expected one of 'syn', 'connect', 'udp', 'version'"),
        ("steps.1.ports", "1-10; rm -rf /", "s.yaml: steps[1].ports:"),
        ("steps.1.rate", 0, "s.yaml: steps[1].rate: expected a value >= 1"),
        (
            "steps.1.host",
            "office",
            "steps[1].host: nmap is an attack tool: it runs on an attacker host, 'office' is benign",
        ),
        ("steps.0.host", "bad", "steps[0].host: web is a benign tool: it runs on a benign host"),
        ("steps.1.host", "nobody", "steps[1].host: no host 'nobody'"),
        ("steps.2.at", 25, "steps[2].at: 'guess' starts less than 6 s after 'scan' on host 'bad' ends"),
        ("steps.2.at", 35.9, "steps[2].at: 'guess' starts less than 6 s after 'scan'"),
        ("steps.2.users", ["admin\nroot"], "steps[2].users[0]:"),
        ("steps.2.users", [""], "steps[2].users[0]:"),
        ("steps.1.ports", "99999", "steps[1].ports: '99999': expected ports 1-65535"),
        ("steps.1.ports", "100-10", "steps[1].ports: '100-10': expected ports 1-65535, a range low-high"),
        ("steps.1.seed", -1, "steps[1].seed: expected a value >= 0"),
        ("seed", -1, "seed: expected a value >= 0"),
        ("hosts.victim.services", ["http", "dns_tunnel"], "hosts.victim.services: dns_tunnel needs dns"),
        ("steps.2.target_service", "ftp", "steps[2].tool: hydra needs the victim's 'ftp' service"),
        ("steps.0.duration", 105, "steps[0].duration: the step ends at 105 s, after duration_s (100)"),
        ("steps.2.name", "scan", "steps[2].name: 'scan' names two steps"),
        (
            "hosts.office.address",
            "10.78.0.21",
            "hosts.office.address: 10.78.0.21 is not a host address of 10.77.0.0/24",
        ),
        ("hosts.office.address", "10.77.0.255", "hosts.office.address: 10.77.0.255 is not a host address"),
        ("hosts.office.address", "10.77.0.66", "hosts.bad.address: 10.77.0.66 is also office's address"),
        ("hosts.office.services", ["http"], "hosts.office.services: only the victim runs services"),
        ("hosts.bad.role", "victim", "hosts: expected exactly one host with role victim, found 2"),
        ("subnet", "8.8.8.0/24", "subnet: 8.8.8.0/24: expected a private IPv4 network"),
        ("subnet", "10.0.0.0/8", "subnet: 10.0.0.0/8: expected a private IPv4 network between /16 and /29"),
        ("duration_s", 0, "duration_s: expected a value > 0"),
        ("name", "Bad Name", "s.yaml: name:"),
    ],
)
def test_a_bad_scenario_names_the_key_and_what_was_expected(path, value, expected):
    assert expected in error_of(with_change(path, value))


def test_the_bridges_namespace_name_is_not_a_host_name():
    data = copy.deepcopy(BASE)
    data["hosts"]["br"] = {"role": "benign", "address": "10.77.0.30"}
    assert "hosts.br: 'br' is the bridge's namespace" in error_of(data)


@pytest.mark.parametrize("path", ["/../../etc/passwd", "@10.77.0.21:22/x", "pkg/x", "/a b"])
def test_the_tunnels_download_is_a_path_of_the_site(path):
    data = copy.deepcopy(BASE)
    data["hosts"]["victim"]["services"] = ["http", "dns", "dns_tunnel"]
    data["steps"][2] = {"name": "tun", "tool": "iodine", "host": "bad", "at": 40, "duration": 20, "download": path}
    assert "steps[2].download" in error_of(data)


def test_a_host_name_that_would_not_fit_an_interface_name_is_refused():
    data = copy.deepcopy(BASE)
    data["hosts"]["averyveryverylongname"] = {"role": "benign", "address": "10.77.0.30"}
    assert "hosts" in error_of(data)


@pytest.mark.parametrize(
    ("spoof", "ok"),
    [("203.0.113.7", True), ("198.51.100.1", True), ("10.77.0.200", True), ("8.8.8.8", False),
     ("10.77.0.21", False), ("192.168.1.1", False), ("10.77.0.0", False), ("10.77.0.255", False)],
)  # fmt: skip
def test_spoofed_sources_come_only_from_the_lab_or_documentation_ranges(spoof, ok):
    data = with_change("steps.1", {"name": "flood", "tool": "hping3", "host": "bad", "at": 10, "duration": 5,
                                   "spoof": spoof})  # fmt: skip
    if ok:
        assert scenario.parse(data).steps[1].spoofed() == [spoof]
    else:
        assert "steps[1].spoof:" in error_of(data)


def test_unknown_keys_are_refused_with_a_suggestion():
    data = with_change("steps.1", {**BASE["steps"][1], "prots": "1-10"})
    message = error_of(data)
    assert "steps[1].prots: unknown key" in message and "ports" in message


def test_a_missing_file_is_a_lab_error(tmp_path):
    with pytest.raises(LabError, match="not found"):
        scenario.load(tmp_path / "none.yaml")
