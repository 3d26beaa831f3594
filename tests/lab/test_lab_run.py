"""A real lab run in namespaces: services, tools, capture, Suricata, labels, teardown.

Needs root, network namespaces and every tool the small scenario uses (see
`python -m lab check`); skipped otherwise, with the reason. Traffic stays in
the lab's own namespaces; each run is bounded (under a minute) and must leave
the host exactly as it found it.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import safety, scenario
from lab.runner import Run, missing_tools

REPO = Path(__file__).resolve().parents[2]

SMALL = {
    "name": "small", "seed": 5, "subnet": "10.79.0.0/24", "duration_s": 30,
    "hosts": {
        "victim": {"role": "victim", "address": "10.79.0.10", "services": ["http", "dns"]},
        "office": {"role": "benign", "address": "10.79.0.21"},
        "bad": {"role": "attacker", "address": "10.79.0.66"},
    },
    "steps": [
        {"name": "browse", "tool": "web", "host": "office", "duration": 25, "pages_per_minute": 30},
        {"name": "lookups", "tool": "dns", "host": "office", "duration": 25, "lookups_per_minute": 60},
        {"name": "scan", "tool": "nmap", "host": "bad", "at": 3, "duration": 10, "ports": "1-200", "rate": 100},
        {"name": "flood", "tool": "hping3", "host": "bad", "at": 19, "duration": 8, "count": 150, "rate": 100,
         "spoof": "198.51.100.3"},
    ],
}  # fmt: skip


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    missing = missing_tools(scenario.parse(SMALL))
    if missing:
        return f"needs {', '.join(missing)}"
    probe = f"jlprobe-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False).returncode != 0:
        return "cannot create a network namespace here"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


WHY_NOT = _why_not()
pytestmark = [pytest.mark.lab, pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))]


def lab_namespaces() -> list[str]:
    return [n for n in safety.netns_names() if n.startswith("jl")]


def test_a_small_run_labels_every_flow_and_leaves_the_host_as_it_was(tmp_path):
    before = lab_namespaces()
    manifest = Run(scenario.parse(SMALL), tmp_path / "out").run()
    assert lab_namespaces() == before
    assert manifest["host_unchanged"] and manifest["failed_steps"] == []
    flows = manifest["counts"]["flows"]
    assert flows.get("attack:nmap", 0) >= 190, flows  # 200 ports, one flow each
    assert flows.get("attack:hping3", 0) >= 140, flows  # 150 SYNs from new source ports
    assert flows.get("benign:web", 0) >= 5 and flows.get("benign:dns", 0) >= 5, flows
    assert "unknown:unknown" not in flows, flows
    with gzip.open(tmp_path / "out" / "labelled.jsonl.gz", "rt") as fh:
        recs = [json.loads(line) for line in fh]
    spoofed = [r for r in recs if r.get("src_ip") == "198.51.100.3"]
    assert spoofed and all(r["lab"]["attacker"] == "198.51.100.3" for r in spoofed)
    truth = json.loads((tmp_path / "out" / "truth.json").read_text())["steps"]
    assert [s["name"] for s in truth] == ["browse", "lookups", "scan", "flood"]
    for name in ("capture.pcap", "labelled.jsonl.gz", "truth.json"):
        assert len(manifest["sha256"][name]) == 64
    assert manifest["tools"]["nmap"].startswith("nmap ")


def test_sigterm_tears_the_lab_down(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(json.dumps({**SMALL, "name": "small"}))
    before = lab_namespaces()
    proc = subprocess.Popen([sys.executable, "-m", "lab", "run", str(path), "-o", str(tmp_path / "out")], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while lab_namespaces() == before and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(4)  # services up, steps running
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1 and "stopped by signal 15" in err, err
    assert lab_namespaces() == before
