"""Suricata, offline, on the lab's capture: the same eve.json a sensor would write."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .errors import LabError

CONFIG = Path(__file__).resolve().parent / "suricata" / "lab.yaml"


def version() -> str:
    out = subprocess.run(["suricata", "-V"], capture_output=True, text=True, timeout=30, check=False)
    return out.stdout.strip() or out.stderr.strip()


def run_offline(pcap: Path, logdir: Path, config: Path = CONFIG) -> Path:
    """eve.json of `pcap`, in a fresh `logdir` (Suricata appends to an existing eve.json)."""
    logdir.mkdir(parents=True, exist_ok=False)
    env = {**os.environ, "TZ": "UTC"}  # eve.json timestamps carry the local offset: pin it
    argv = ["suricata", "-c", str(config), "-r", str(pcap), "-l", str(logdir), "-k", "none", "--runmode", "single"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=1800, env=env, check=False)
    (logdir / "suricata.out").write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        raise LabError(f"suricata failed ({out.returncode}) on {pcap}: see {logdir / 'suricata.out'}")
    return logdir / "eve.json"
