"""What each alert format (a sink's `format:`) costs per alert: converting and serialising.

For each format, the work its sink adds per alert: native is the alert's compact JSON (what the
jsonl sink writes), ecs and ocsf the converted document's compact JSON, cef the CEF line. Also
the bytes per alert, and the import time of the format's module in a fresh process (it is
loaded only when a sink asks for it). Alerts are realistic ones (a scored network alert with
tags and an action, a DNS alert, a counting rule's) in rotation, with --distinct source
addresses (the IP check is cached). Best of --repeats runs of --alerts alerts.

    python bench/alert_format_bench.py --alerts 20000 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from jenga_edge.sinks.base import encode
from jenga_edge.sinks.formats import converter

FORMATS = ("native", "ecs", "ocsf", "cef")


def alerts(n: int, distinct: int) -> list[dict[str, Any]]:
    base = {
        "timestamp": "2026-12-01T14:56:17.390Z",
        "event_type": "alert",
        "agent": {"id": "branch-fw-01", "hostname": "fw1", "version": "0.2.0"},
        "rule": "admin_port_attack_block",
        "priority": "critical",
        "task": "threat",
        "score": 0.87399,
        "threshold": 0.6535702347755432,
        "model": {"bundle_id": "5b" * 32, "file": "threat.onnx", "sha256": "9a" * 32},
        "source": "tcp:127.0.0.1:5514",
        "dest_ip": "192.0.2.157",
        "dest_port": 22,
        "fields": {"protocol": "tcp"},
        "output": "attack on admin port 22 (score 0.874)",
        "tags": ["network", "T1110"],
        "actions": [{"type": "firewall", "result": "dry_run", "name": "firewall"}],
    }
    dns = {**base, "rule": "dga_domain", "task": "dga", "dest_ip": None, "dest_port": None, "tags": ["T1568.002"]}
    dns["fields"] = {"domain": "xk2j9qpl0a.example.com"}
    counting = {**base, "task": None, "score": None, "threshold": None, "model": None, "rule": "many_conns"}
    shapes = (base, base, dns, counting)
    return [
        {
            **shapes[i % 4],
            "alert_id": f"r-{i}",
            "src_ip": f"10.{i % distinct // 65536}.{i % distinct // 256 % 256}.{i % 256}",
        }
        for i in range(n)
    ]


def per_alert(fmt: str, batch: list[dict[str, Any]], repeats: int) -> tuple[float, float]:
    """(best microseconds per alert, mean bytes per alert)."""
    convert = converter(fmt)
    if convert is None:
        render = encode
    elif fmt == "cef":
        render = lambda a: convert(a).encode()  # noqa: E731
    else:
        render = lambda a: encode(convert(a))  # noqa: E731
    best, size = float("inf"), 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = [render(a) for a in batch]
        best = min(best, time.perf_counter() - t0)
        size = sum(len(b) for b in out)
    return best / len(batch) * 1e6, size / len(batch)


def import_ms(fmt: str, runs: int) -> float | None:
    """Median ms to import the format's module, after what an agent has imported (jenga_edge.sinks)."""
    if fmt == "native":
        return None
    probe = (
        "import time, jenga_edge.sinks, jenga_edge.sinks.formats as f\n"
        f"t = time.perf_counter(); f.converter({fmt!r}); print((time.perf_counter() - t) * 1e3)"
    )
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
        times.append(float(out.stdout))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=20000, help="alerts per run")
    ap.add_argument("--repeats", type=int, default=5, help="runs per format (the best is kept)")
    ap.add_argument("--distinct", type=int, default=1000, help="distinct source addresses")
    ap.add_argument("--import-runs", type=int, default=5, help="fresh processes per import time")
    ap.add_argument("--json", default="build/bench/alert_format_bench.json", help="write the results here")
    args = ap.parse_args()
    batch = alerts(args.alerts, args.distinct)
    rows = []
    for fmt in FORMATS:
        us, size = per_alert(fmt, batch, args.repeats)
        rows.append(
            {"format": fmt, "us_per_alert": us, "bytes_per_alert": size, "import_ms": import_ms(fmt, args.import_runs)}
        )
    native = rows[0]["us_per_alert"]
    print(f"{'format':<8} {'us/alert':>9} {'x native':>9} {'alerts/s':>10} {'bytes':>7} {'import ms':>10}")
    for r in rows:
        imp = f"{r['import_ms']:.2f}" if r["import_ms"] is not None else "-"
        print(
            f"{r['format']:<8} {r['us_per_alert']:>9.2f} {r['us_per_alert'] / native:>9.1f} "
            f"{1e6 / r['us_per_alert']:>10,.0f} {r['bytes_per_alert']:>7.0f} {imp:>10}"
        )
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(
                {"alerts": args.alerts, "repeats": args.repeats, "distinct": args.distinct, "rows": rows}, fh, indent=2
            )


if __name__ == "__main__":
    main()
