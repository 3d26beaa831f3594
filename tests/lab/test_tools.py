"""Every tool becomes one bounded argv (never a shell line) from its typed step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab import scenario
from lab.scenario import SERVICES
from lab.tools import BY_TOOL, StepContext
from lab.tools.hydra import wordlist

SCENARIOS = Path(__file__).resolve().parents[2] / "lab" / "scenarios"


def ctx(tmp_path: Path) -> StepContext:
    return StepContext("10.77.0.66", "02:4a:4c:77:00:42", "10.77.0.10", "02:4a:4c:77:00:0a", 5, tmp_path / "step",
                       tmp_path / "site", python=("python3", "-m", "lab.clients"))  # fmt: skip


def test_every_step_of_the_shipped_scenarios_is_an_argv_of_plain_strings(tmp_path):
    for path in SCENARIOS.glob("*.yaml"):
        for step in scenario.load(path).steps:
            argv = step.command(ctx(tmp_path))
            assert argv and all(isinstance(a, str) for a in argv), step
            assert argv[0] in step.binaries or argv[:3] == ["python3", "-m", "lab.clients"], argv
            assert not {"sh", "bash", "-c"} & set(argv[:2])


def step(data: dict):
    return scenario.parse({
        "name": "t", "duration_s": 500, "hosts": {
            "victim": {"role": "victim", "address": "10.77.0.10", "services": list(SERVICES)},
            "bad": {"role": "attacker", "address": "10.77.0.66"}, "good": {"role": "benign", "address": "10.77.0.21"}},
        "steps": [{"name": "s", "duration": 60, **data}],
    }).steps[0]  # fmt: skip


def test_nmap_is_bounded_by_rate_retries_and_the_steps_duration(tmp_path):
    argv = step({"tool": "nmap", "host": "bad", "scan": "udp", "ports": "1-100", "rate": 50}).command(ctx(tmp_path))
    assert argv == ["nmap", "-n", "-Pn", "-sU", "-p", "1-100", "--max-rate", "50", "--max-retries", "1",
                    "--host-timeout", "60s", "-e", "eth0", "10.77.0.10"]  # fmt: skip


def test_hping3_counts_its_packets_and_forges_only_what_the_step_says(tmp_path):
    s = step({"tool": "hping3", "host": "bad", "count": 300, "rate": 200, "spoof": "203.0.113.9"})
    argv = s.command(ctx(tmp_path))
    assert argv == ["hping3", "-q", "-S", "-p", "80", "-c", "300", "-i", "u5000", "-a", "203.0.113.9", "10.77.0.10"]
    assert "--rand-source" not in argv and "--flood" not in argv and s.ok_exits == (0, 1)


def test_masscan_gets_the_frames_addresses_it_cannot_learn_itself(tmp_path):
    argv = step({"tool": "masscan", "host": "bad", "ports": "1-10", "rate": 100}).command(ctx(tmp_path))
    assert argv[argv.index("--router-mac") + 1] == "02:4a:4c:77:00:0a"
    assert argv[argv.index("--adapter-ip") + 1] == "10.77.0.66" and argv[argv.index("--seed") + 1] == "5"


def test_hydra_writes_its_word_lists_from_the_seed(tmp_path):
    s = step({"tool": "hydra", "host": "bad", "target_service": "ftp", "users": ["admin", "bob"], "passwords": 150})
    argv = s.command(ctx(tmp_path))
    assert argv[-1] == "ftp://10.77.0.10"
    words = (tmp_path / "step" / "passwords.txt").read_text().split()
    assert len(words) == 150 and words == wordlist(150, 5) and words != wordlist(150, 6)
    assert (tmp_path / "step" / "users.txt").read_text().split() == ["admin", "bob"]


def test_slowloris_stops_itself_before_the_step_ends(tmp_path):
    argv = step({"tool": "slowloris", "host": "bad", "connections": 50}).command(ctx(tmp_path))
    assert argv[argv.index("-l") + 1] == "59" and argv[argv.index("-c") + 1] == "50"


@pytest.mark.parametrize(("tool", "key"), [("web", "per_minute"), ("dns", "per_minute"), ("ssh", "per_minute"),
                                           ("ftp", "per_minute"), ("machine", "period")])  # fmt: skip
def test_benign_behaviours_run_the_lab_client_bounded_by_the_duration(tool, key, tmp_path):
    argv = step({"tool": tool, "host": "good"}).command(ctx(tmp_path))
    assert argv[:4] == ["python3", "-m", "lab.clients", tool]
    payload = json.loads(argv[4])
    assert payload["duration"] == 60 and payload["seed"] == 5 and payload["target"] == "10.77.0.10" and key in payload


def test_the_registry_names_each_tool_once():
    benign = {"web", "dns", "ssh", "ftp", "machine", "chatter"}
    attack = {"nmap", "masscan", "hping3", "hydra", "slowloris", "iodine"}
    assert sorted(BY_TOOL) == sorted(benign | attack)
    for name, cls in BY_TOOL.items():
        assert cls.role in ("attack", "benign"), name
