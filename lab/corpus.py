"""The committed corpus: what a run leaves that is worth keeping, and its index.

`publish` copies a run's `labelled.jsonl.gz`, `truth.json` and `manifest.json`
into `<corpus>/<scenario>-s<seed>/` (the capture and raw eve.json stay out: they
are large and the labelled file holds every record) and rewrites
`<corpus>/index.json` and the counts table of `<corpus>/README.md` from every
manifest there. `runs` lists the published runs for readers (the trainer's
config, the tests).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from .errors import LabError
from .runner import sha256

KEPT = ("labelled.jsonl.gz", "truth.json", "manifest.json")
TABLE_START, TABLE_END = "<!-- counts:start -->", "<!-- counts:end -->"


def publish(runs: list[Path], corpus: Path) -> list[str]:
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
        for name in KEPT:
            shutil.copyfile(run / name, dest / name)
        lines.append(f"{dest}: {labelled.stat().st_size:,} bytes of labelled records")
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
                           "labelled_sha256": m["sha256"]["labelled.jsonl.gz"]}  # fmt: skip
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
    out.append("| all records | " + " | ".join(f"{index[n]['records']:,}" for n in names) + " |")
    return "\n".join(out) + "\n"
