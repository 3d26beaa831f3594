"""Turn one NAB series (CSV timestamp,value + NAB's anomaly windows) into labelled JSON Lines.

    python examples/nab_prepare.py machine_temperature_system_failure
    jenga-train --config examples/configs/nab_machine_temperature.yaml

Each row is {"timestamp": ISO-8601 UTC, "series": name, "value": float, "label":
"anomaly" inside one of NAB's windows, else "normal"}. `series` keys the window
features (one key per series); the label is for evaluation only (a novelty task
trains on normal rows). --normal-only leaves the window rows out, as a user with
only healthy history would have it. The NAB data is in ../shared/datasets/nab/
(its README names the source commit and licence).
"""

from __future__ import annotations

import argparse
import csv
import json
from datetime import datetime, timezone
from pathlib import Path

NAB = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nab"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.strip()).replace(tzinfo=timezone.utc)


def rows(nab: Path, series: str, normal_only: bool = False) -> list[dict]:
    (csv_path,) = nab.glob(f"data/*/{series}.csv")
    key = f"{csv_path.parent.name}/{csv_path.name}"
    windows = [(utc(a), utc(b)) for a, b in json.loads((nab / "labels" / "combined_windows.json").read_text())[key]]
    out = []
    with open(csv_path, newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            ts = utc(rec["timestamp"])
            anomaly = any(a <= ts <= b for a, b in windows)
            if anomaly and normal_only:
                continue
            out.append(
                {
                    "timestamp": ts.isoformat().replace("+00:00", "Z"),
                    "series": series,
                    "value": float(rec["value"]),
                    "label": "anomaly" if anomaly else "normal",
                }
            )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("series", help="a NAB file name without .csv, e.g. machine_temperature_system_failure")
    ap.add_argument("--nab", type=Path, default=NAB, help="the NAB subset's directory")
    ap.add_argument("-o", "--output", type=Path, help="default: examples/data/nab_<series>.jsonl")
    ap.add_argument("--normal-only", action="store_true", help="leave out the rows inside anomaly windows")
    args = ap.parse_args(argv)
    out = args.output or Path(__file__).resolve().parent / "data" / f"nab_{args.series}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    data = rows(args.nab, args.series, args.normal_only)
    out.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
    n_anomaly = sum(r["label"] == "anomaly" for r in data)
    print(f"{out}: {len(data)} rows, {n_anomaly} inside anomaly windows")


if __name__ == "__main__":
    main()
