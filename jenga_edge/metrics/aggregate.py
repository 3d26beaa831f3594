"""One metrics endpoint for several workers (workers.py): their expositions merged.

Each worker serves its own registry on a loopback port only the supervisor reads;
the supervisor's `/metrics` scrapes them (each within SCRAPE_TIMEOUT_S) and
serves every family once, each sample with a ``worker="K"`` label. Labels, not
sums: per-worker series show a skewed shard or a stalled worker, gauges and
info series (jenga_up, jenga_bundle_info) stay meaningful, and a sum is one
`sum without (worker)` away in PromQL. A worker that does not answer in time
is left out of that scrape and counted in jenga_worker_scrape_failures_total.
"""

from __future__ import annotations

import re

SCRAPE_TIMEOUT_S = 1.0
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(.*)$")


def merge(expositions: dict[int, str], own: list[str] | None = None) -> str:
    """Worker index -> its /metrics text, as one exposition with a worker label per sample;
    `own`: the supervisor's lines (already in the format), put first."""
    families: dict[str, list[str]] = {}  # family -> HELP/TYPE lines (from the first worker that has them)
    samples: dict[str, list[str]] = {}
    for worker, text in sorted(expositions.items()):
        family = ""
        for line in text.splitlines():
            if line.startswith("# "):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    family = parts[2]
                    head = families.setdefault(family, [])
                    if len(head) < 2 and line not in head:
                        head.append(line)
                    samples.setdefault(family, [])
                continue
            m = _SAMPLE.match(line)
            if m is None:
                continue
            name, labels, value = m.groups()
            inner = f'worker="{worker}"' + (f",{labels[1:-1]}" if labels and labels != "{}" else "")
            samples.setdefault(family or name, []).append(f"{name}{{{inner}}} {value}")
    out = list(own or [])
    for family, body in samples.items():
        out += families.get(family, [])
        out += body
    return "\n".join(out) + "\n"
