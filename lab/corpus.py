"""The committed corpus: what a run leaves that is worth keeping, and its index.

`publish` copies a run's `labelled.jsonl.gz`, `truth.json` and `manifest.json`
into `<corpus>/<scenario>-s<seed>/` (the capture and raw eve.json stay out: they
are large). Every flow record is kept; other records (http, dns...) up to
CAP_APP_RECORDS per step, and the manifest's `published` says what was left out and rewrites
`<corpus>/index.json` and the counts table of `<corpus>/README.md` from every
manifest there. `runs` lists the published runs for readers (the trainer's
config, the tests).
"""

from __future__ import annotations

import collections
import gzip
import json
import shutil
from pathlib import Path
from typing import Any

from jenga_edge.contract.digest import sha256_file as sha256

from .errors import LabError
from .labels import gzip_writer

TABLE_START, TABLE_END = "<!-- counts:start -->", "<!-- counts:end -->"


# App-layer records kept per step: an iodine tunnel writes one DNS record per query, each
# holding tunnelled data (incompressible): 13,497 of them were 70 % of a run's gzip.
CAP_APP_RECORDS = 3000


def trim(src: Path, dest: Path, cap: int) -> dict[str, int]:
    """`src` to `dest` (gzip, reproducible bytes) keeping every flow record and at most `cap`
    other records per step, the first in Suricata's order; returns what was left out per step."""
    kept: collections.Counter[str] = collections.Counter()
    dropped: collections.Counter[str] = collections.Counter()
    with gzip.open(src, "rb") as fh, gzip_writer(dest) as out:
        for line in fh:
            rec = json.loads(line)
            step = rec["lab"]["step"] or "unknown"
            if rec.get("event_type") != "flow":
                kept[step] += 1
                if kept[step] > cap:
                    dropped[step] += 1
                    continue
            out.write(line)
    return dict(sorted(dropped.items()))


def publish(runs: list[Path], corpus: Path, cap: int = CAP_APP_RECORDS) -> list[str]:
    lines = []
    for run in runs:
        manifest = json.loads((run / "manifest.json").read_text())
        if not manifest.get("host_unchanged") or manifest.get("failed_steps"):
            raise LabError(f"{run}: the run had problems or failed steps; it is not published (see manifest.json)")
        labelled = run / "labelled.jsonl.gz"
        if sha256(labelled) != manifest["sha256"]["labelled.jsonl.gz"]:
            raise LabError(f"{labelled}: sha256 differs from the manifest's")
        dest = corpus / f"{manifest['scenario']}-s{manifest['seed']}"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / "truth.json", dest / "truth.json")
        dropped = trim(labelled, dest / "labelled.jsonl.gz", cap)
        manifest["published"] = {"cap_app_records_per_step": cap, "left_out": dropped,
                                 "labelled_sha256": sha256(dest / "labelled.jsonl.gz")}  # fmt: skip
        (dest / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        size = (dest / "labelled.jsonl.gz").stat().st_size
        lines.append(f"{dest}: {size:,} bytes of labelled records; left out: {dropped or 'nothing'}")
        unknown = sum(n for k, n in manifest["counts"]["records"].items() if k.startswith("unknown:"))
        if unknown:
            lines.append(f"{dest}: warning: {unknown:,} records no step explains (label unknown); see labels.py")
    index = write_index(corpus)
    lines.append(f"{corpus}/index.json: {len(index)} runs")
    return lines


def runs(corpus: Path) -> list[Path]:
    return sorted(p.parent for p in corpus.glob("*/manifest.json"))


def write_index(corpus: Path) -> dict[str, Any]:
    index: dict[str, Any] = {}
    for run in runs(corpus):
        m = json.loads((run / "manifest.json").read_text())
        index[run.name] = {"scenario": m["scenario"], "seed": m["seed"], "flows": m["counts"]["flows"],
                           "records": sum(m["counts"]["event_types"].values()),
                           "labelled_sha256": m["published"]["labelled_sha256"],
                           "left_out": m["published"]["left_out"]}  # fmt: skip
    (corpus / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    readme = corpus / "README.md"
    if readme.exists():
        text = readme.read_text()
        if TABLE_START in text and TABLE_END in text:
            head, rest = text.split(TABLE_START, 1)
            _, tail = rest.split(TABLE_END, 1)
            readme.write_text(head + TABLE_START + "\n" + table(index) + TABLE_END + tail)
    return index


def table(index: dict[str, Any]) -> str:
    names = sorted(index)
    keys = sorted({k for run in index.values() for k in run["flows"]}, key=lambda k: (k.split(":")[0] != "attack", k))
    out = ["| flows (Suricata `flow` records) | " + " | ".join(f"`{n}`" for n in names) + " |",
           "|---|" + "---:|" * len(names)]  # fmt: skip
    for k in keys:
        out.append(f"| {k} | " + " | ".join(f"{index[n]['flows'].get(k, 0):,}" for n in names) + " |")
    out.append("| all records Suricata wrote | " + " | ".join(f"{index[n]['records']:,}" for n in names) + " |")
    left = " | ".join(", ".join(f"{k} {v:,}" for k, v in index[n]["left_out"].items()) or "none" for n in names)
    out.append(f"| records left out of the committed file (over {CAP_APP_RECORDS:,} per step) | {left} |")
    return "\n".join(out) + "\n"
