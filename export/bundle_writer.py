"""best_model/ -> BUNDLE_DIR/: per-task graphs, merged graphs, manifest.

The bundle is written to a temporary sibling directory and renamed into place
only when every graph has passed the checker and the parity check, so a
failed export never leaves a half bundle where an agent could pick it up.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnx
import onnxruntime as ort
import torch

import jenga_edge
from jenga_edge.contract.bundle_format import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    MANIFEST,
    Manifest,
    MergedEntry,
    Producer,
    Requires,
    SourceModel,
    TaskEntry,
    TensorSpec,
    encode_manifest,
    input_specs,
    seal,
)
from jenga_edge.contract.digest import sha256_file
from jenga_edge.contract.errors import BundleError, ConfigError, DataError, JengaError
from jenga_edge.contract.schema import FeatureSchema
from jenga_edge.contract.tasks import task_kind
from trainer import checkpoint
from trainer.dataset import split_indices, vectorize_rows, vectorize_text_rows
from trainer.readers import read_rows

from .graphs import MergedGraph, TaskGraph, calibrated_tolerances, output_names
from .onnx_export import export_graph, opset_of, set_metadata
from .opsets import DEFAULT_OPSET, ORT_MIN_FOR_OPSET, SUPPORTED_OPSETS
from .parity import compare, edge_cases, trim_invariance
from .tree_onnx import ORT_MIN_FOR_ML_OPSET, BoosterReference, booster_graph

AGENT_MIN_VERSION = "0.2.0"  # the agent version; format_version (4) is what an older agent refuses
PARITY_ROWS = 5000


class ParityError(JengaError):
    """onnxruntime and torch disagree by more than the tolerance."""

    exit_code = 1


@dataclass
class ExportOptions:
    tasks: list[str] | None = None
    opset: int = DEFAULT_OPSET
    atol: float = 1e-5
    data: str | None = None  # rows for the parity check (default: the validation split)
    force: bool = False


def export_bundle(
    model_dir: str | Path, bundle_dir: str | Path, opts: ExportOptions, log: Callable[[str], None] = print
) -> Manifest:
    loaded = checkpoint.load(model_dir)
    tasks = _select_tasks(loaded, opts.tasks)
    if opts.opset not in SUPPORTED_OPSETS:
        raise ConfigError(
            f"--opset {opts.opset}: unsupported; choose {SUPPORTED_OPSETS.start}..{SUPPORTED_OPSETS.stop - 1}"
        )
    out = Path(bundle_dir)
    _check_target(out, opts.force)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        manifest = _build(loaded, Path(model_dir), tasks, tmp, opts, log)
        (tmp / MANIFEST).write_bytes(encode_manifest(manifest))
        _fsync_dir_files(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _select_tasks(loaded: checkpoint.LoadedModel, wanted: list[str] | None) -> list[str]:
    names = [t["name"] for t in loaded.meta["tasks"]]
    if not wanted:
        return names
    unknown = [t for t in wanted if t not in names]
    if unknown:
        raise ConfigError(f"--tasks: unknown task(s) {', '.join(unknown)}; the model has: {', '.join(names)}")
    return [n for n in names if n in wanted]


def _check_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise BundleError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise BundleError(f"{out}: directory is not empty; use --force to replace it")


def _build(
    loaded: checkpoint.LoadedModel,
    model_dir: Path,
    tasks: list[str],
    tmp: Path,
    opts: ExportOptions,
    log: Callable[[str], None],
) -> Manifest:
    model = loaded.model.cpu().eval()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    version = int(time.time())
    cases, parity_source = {}, {}
    entries = []
    for name in tasks:
        meta = loaded.task(name)
        src = meta["source"]
        if src not in cases:
            cases[src], parity_source[src] = _parity_cases(loaded, src, opts.data, log)
        export = _export_tree_task if name in loaded.trees else _export_task
        entry = export(model, loaded, meta, tmp, cases[src], opts, version, log)
        entry.parity["rows"] = parity_source[src]
        entries.append(entry)
    merged = [
        _export_merged(model, loaded, src, group, tmp, cases[src], opts, version, log)
        for src, group in _groups(model, tasks).items()
    ]
    manifest = Manifest(
        format=BUNDLE_FORMAT,
        format_version=BUNDLE_FORMAT_VERSION,
        bundle_id="",  # sealed below: the digest of everything else
        created=created,
        project_name=loaded.meta["project_name"],
        producer=Producer(
            name="jenga-export",
            version=jenga_edge.__version__,
            torch=str(torch.__version__),
            onnx=onnx.__version__,
            onnxruntime=ort.__version__,
            exporter="torch.onnx.export(dynamo=True)",
            opset=opts.opset,
        ),
        source_model=SourceModel(
            path=str(model_dir.resolve()),
            sha256=sha256_file(model_dir / checkpoint.META_FILE),
            weights_sha256=loaded.meta["weights"]["sha256"],
            best_epoch=loaded.meta.get("best_epoch"),
        ),
        requires=Requires(
            agent_min_version=AGENT_MIN_VERSION,
            onnxruntime_min_version=_ort_min(opts.opset, any(t in loaded.trees for t in tasks)),
            opset=opts.opset,
        ),
        tasks=entries,
        merged=merged,
    )
    return seal(manifest)


def _export_task(
    model, loaded, meta: dict, tmp: Path, cases: dict, opts: ExportOptions, version: int, log
) -> TaskEntry:
    name, src = meta["name"], meta["source"]
    schema = loaded.schemas[src]
    outputs = output_names(model, name)
    path = tmp / f"{name}.onnx"
    graph = TaskGraph(model, name)
    onx = export_graph(graph, schema, outputs, path, opts.opset)
    parity = _check_parity(graph, path, outputs, cases, opts.atol, name)
    return _finish_task(onx, path, loaded, meta, parity, _output_specs(model, name), version, log)


def _export_tree_task(
    model, loaded, meta: dict, tmp: Path, cases: dict, opts: ExportOptions, version: int, log
) -> TaskEntry:
    """A tree-model task: its booster as an ONNX-ML TreeEnsemble graph, checked against the
    booster's own predict (torch is no reference for a tree)."""
    name, src = meta["name"], meta["source"]
    schema, tree = loaded.schemas[src], loaded.trees[name]
    kind = task_kind(meta["type"])
    path = tmp / f"{name}.onnx"
    onx = booster_graph(
        tree.booster.dump_model(), meta["type"], len(schema.numeric), len(schema.categorical), opts.opset, name
    )
    onnx.save(onx, str(path))
    parity = _check_parity(BoosterReference(tree), path, kind.output_names(), cases, opts.atol, name)
    specs = [TensorSpec(**cast(dict[str, Any], o)) for o in kind.output_specs(tree.n_classes)]
    entry = _finish_task(onx, path, loaded, meta, parity, specs, version, log)
    entry.learner = "lightgbm"
    return entry


def _finish_task(
    onx, path: Path, loaded, meta: dict, parity: dict, outputs: list[TensorSpec], version: int, log
) -> TaskEntry:
    """Metadata into the graph, the graph written, and its manifest entry."""
    name, src = meta["name"], meta["source"]
    schema = loaded.schemas[src]
    labels = list(loaded.labels[name].classes)
    props = {
        "jenga.task": name,
        "jenga.task_type": meta["type"],
        "jenga.mode": meta["mode"],
        "jenga.source": src,
        "jenga.feature_schema": schema.canonical_json(),
        "jenga.feature_schema_sha256": schema.sha256,
        "jenga.labels": labels,
        "jenga.default_threshold": meta["threshold"],
        "jenga.parity_max_abs_diff": _worst(parity),
        "jenga.producer_version": jenga_edge.__version__,
    }
    set_metadata(
        onx,
        props,
        producer_version=jenga_edge.__version__,
        model_version=version,
        doc=f"JengaAI Edge: task {name!r} ({meta['type']}, {meta['mode']}) of project "
        f"{loaded.meta['project_name']!r}; inputs "
        + ", ".join(f"{i.name} {i.dtype} {i.shape}" for i in input_specs(schema)),
    )
    onnx.save(onx, str(path))
    log(
        f"  {name}: {path.name} {path.stat().st_size / 1024:.1f} KiB, max abs diff "
        + ", ".join(f"{o.name} {parity[o.name]:.2e}" for o in outputs)
    )
    return TaskEntry(
        name=name,
        type=meta["type"],
        mode=meta["mode"],
        source=src,
        file=path.name,
        sha256=sha256_file(path),
        opset=opset_of(onx),
        size_bytes=path.stat().st_size,
        inputs=input_specs(schema),
        outputs=outputs,
        labels=labels,
        threshold=meta["threshold"],
        metrics=_plain_metrics(meta["metrics"]),
        schema=schema,
        schema_sha256=schema.sha256,
        parity=parity,
    )


def _groups(model, tasks: list[str]) -> dict[str, list[str]]:
    by_source: dict[str, list[str]] = {}
    for t in (t for t in tasks if t in model.specs):  # a tree-model task has a graph of its own only
        by_source.setdefault(model.specs[t].source, []).append(t)
    return {s: ts for s, ts in by_source.items() if len(ts) >= 2}


def _export_merged(
    model, loaded, src: str, tasks: list[str], tmp: Path, cases: dict, opts: ExportOptions, version: int, log
) -> MergedEntry:
    schema = loaded.schemas[src]
    graph = MergedGraph(model, tasks)
    outputs = graph.output_names()
    path = tmp / f"merged-{src}.onnx"
    onx = export_graph(graph, schema, outputs, path, opts.opset)
    parity = _check_parity(graph, path, outputs, cases, opts.atol, f"merged-{src}")
    vs_tasks = _merged_vs_task_graphs(path, tmp, tasks, outputs, cases)
    if max(vs_tasks.values()) > opts.atol:
        raise ParityError(
            f"merged-{src}.onnx differs from the per-task graphs by {max(vs_tasks.values()):.2e} > --atol {opts.atol:g}"
        )
    set_metadata(
        onx,
        {
            "jenga.merged_tasks": tasks,
            "jenga.source": src,
            "jenga.feature_schema_sha256": schema.sha256,
            "jenga.producer_version": jenga_edge.__version__,
        },
        producer_version=jenga_edge.__version__,
        model_version=version,
        doc=f"JengaAI Edge: tasks {', '.join(tasks)} of source {src!r} in one graph",
    )
    onnx.save(onx, str(path))
    log(
        f"  merged-{src}: {path.name} {path.stat().st_size / 1024:.1f} KiB, tasks {', '.join(tasks)}, "
        f"max abs diff {_worst(parity):.2e} (vs per-task graphs {max(vs_tasks.values()):.2e})"
    )
    return MergedEntry(
        file=path.name,
        sha256=sha256_file(path),
        source=src,
        tasks=tasks,
        size_bytes=path.stat().st_size,
        outputs={t: _output_specs(model, t, prefix=f"{t}.") for t in tasks},
        parity={**parity, "vs_task_graphs": vs_tasks},
    )


def _merged_vs_task_graphs(path: Path, tmp: Path, tasks: list[str], outputs: list[str], cases: dict) -> dict:
    merged = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    singles = {t: ort.InferenceSession(str(tmp / f"{t}.onnx"), providers=["CPUExecutionProvider"]) for t in tasks}
    worst = {o: 0.0 for o in outputs}
    inputs = [i.name for i in merged.get_inputs()]
    for arrays in cases.values():
        feed = dict(zip(inputs, arrays))
        got = dict(zip(outputs, merged.run(outputs, feed)))
        for t, sess in singles.items():
            names = [o.name for o in sess.get_outputs()]
            for n, v in zip(names, sess.run(names, feed)):
                d = np.abs(got[f"{t}.{n}"].astype(np.float64) - v.astype(np.float64))
                worst[f"{t}.{n}"] = max(worst[f"{t}.{n}"], float(d.max()) if d.size else 0.0)
    return worst


def _check_parity(graph, path: Path, outputs: list[str], cases: dict, atol: float, what: str) -> dict:
    """torch vs onnxruntime on every case: each output within atol, except a fused task's
    score, within atol plus what its calibration makes of an atol-sized error in the
    member statistics (graphs.calibrated_tolerances; the parity report's 'tolerance'); a
    novelty or distance score likewise, for its log error or log distance."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    parity = compare(graph, session, outputs, cases, tolerance=lambda part: calibrated_tolerances(graph, part, atol))
    ratio = parity.get("ratio", {})
    bad = {o: parity[o] for o in outputs if not _within(parity, o, atol)}
    if bad:
        worst_case = {
            c: d
            for c, d in parity["cases"].items()
            if any((ratio[o].get(c, 0.0) > 1) if o in ratio else not d[o] <= atol for o in bad)
        }
        raise ParityError(
            f"{what}: onnxruntime differs from torch by "
            + ", ".join(f"{o} {v:.3e}" for o, v in bad.items())
            + f" > --atol {atol:g}"
            + "".join(f" ({o}: {max(ratio[o].values()):.2f} x its calibrated tolerance)" for o in bad if o in ratio)
            + f" (cases: {', '.join(worst_case)})"
        )
    if ratio:
        # The report keeps numbers only at the top level (the manifest's worst diff).
        parity["tolerance"] = {
            o: {"max": v, "max_diff_over_tolerance": max(ratio[o].values()), "basis": TOLERANCE_BASIS}
            for o, v in parity["tolerance"].items()
        }
        del parity["ratio"]
    if any(len(c) > 2 for c in cases.values()):
        _check_trimming(session, outputs, cases, atol, what, parity)
    return parity


TOLERANCE_BASIS = (
    "calibrated score (fused; novelty, distance): atol plus the move of torch's score when every member "
    "statistic (a novelty or distance task's own: its log error or log distance) moves by atol x max(1, |z|)"
)


def _within(parity: dict, output: str, atol: float) -> bool:
    ratio = parity.get("ratio", {})
    if output in ratio:
        return max(ratio[output].values()) <= 1
    return parity[output] <= atol


def _check_trimming(session, outputs: list[str], cases: dict, atol: float, what: str, parity: dict) -> None:
    """The agent trims the bytes axis to a batch's longest text: the scores must not move."""
    trim = trim_invariance(session, outputs, cases)
    parity["trimmed_vs_padded"] = trim
    bad = {o: v for o, v in trim.items() if not v <= atol}
    if bad:
        raise ParityError(
            f"{what}: trimming text_bytes to the longest text changes "
            + ", ".join(f"{o} by {v:.3e}" for o, v in bad.items())
            + f" > --atol {atol:g}"
        )


def _parity_cases(loaded, src: str, data: str | None, log: Callable[[str], None]) -> tuple[dict, str]:
    schema: FeatureSchema = loaded.schemas[src]
    rows, where = _parity_rows(loaded, src, data, log)
    num, cat = vectorize_rows(schema, rows, where)
    return edge_cases(schema, num, cat, text=vectorize_text_rows(schema, rows, where)), where


def _check_parity_columns(
    schema: FeatureSchema, rows: list[dict], data: str, src: str, log: Callable[[str], None]
) -> None:
    """Parity rows must be rows of this schema: a file of another kind of event
    would test the graph on nothing but missing values."""
    seen: set[str] = set()
    for row in rows[:1000]:
        seen.update(row)
    missing = [f.name for f in schema.features if f.name not in seen]
    if len(missing) * 2 > len(schema.features):
        raise DataError(
            f"--data {data}: its rows lack {len(missing)} of the {len(schema.features)} features of "
            f"source {src!r} ({', '.join(missing[:8])}{', ...' if len(missing) > 8 else ''}); "
            "give rows of the data the model was trained on"
        )
    if missing:
        log(f"  --data {data}: no row has {', '.join(missing)}: the parity check scores them as missing")


def _parity_rows(loaded, src: str, data: str | None, log: Callable[[str], None]) -> tuple[list[dict], str]:
    cfg = loaded.meta["config"]
    scfg = cfg["sources"][src]
    if data:
        rows = read_rows(data, events=loaded.schemas[src].events)[:PARITY_ROWS]
        _check_parity_columns(loaded.schemas[src], rows, data, src, log)
        return rows, f"--data {data}"
    paths = loaded.meta.get("data_paths", {}).get(src)
    paths = [paths] if isinstance(paths, str) else paths or []  # a str before sources took a list
    if paths and all(Path(p).is_file() for p in paths):
        events = loaded.schemas[src].events
        rows = read_rows(paths, scfg.get("format", "auto"), scfg.get("columns"), scfg.get("limit"), events)
        t = cfg["training"]
        _, val = split_indices(len(rows), t["validation_fraction"], t["seed"])
        return [rows[i] for i in val[:PARITY_ROWS]], f"validation split of {', '.join(paths)}"
    return _synthetic_rows(loaded.schemas[src]), "synthesized from the schema (training data not found)"


def _synthetic_rows(schema: FeatureSchema, n: int = 2000) -> list[dict]:
    """Rows spread around the fitted parameters, for models whose data is gone."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(n):
        row: dict[str, Any] = {}
        for f in schema.features:
            if f.is_text:
                size = int(rng.integers(0, f.text_limit + 1))
                row[f.name] = "".join(chr(c) for c in rng.integers(97, 123, size))
            elif f.kind == "categorical":
                row[f.name] = f.categories[rng.integers(1, len(f.categories))] if len(f.categories) > 1 else None
            elif f.kind == "boolean":
                row[f.name] = bool(rng.integers(0, 2))
            elif f.edges:
                row[f.name] = float(rng.uniform(f.edges[0], f.edges[-1]))
            else:
                spread = f.std if f.encoding == "standard" else max(1.0, abs(f.impute))
                row[f.name] = float(f.impute + rng.normal() * spread)
        rows.append(row)
    return rows


def _output_specs(model, task: str, prefix: str = "") -> list[TensorSpec]:
    spec = model.specs[task]
    return [TensorSpec(**o) for o in spec.kind.contract.output_specs(spec.n_classes, prefix)]


def _ort_min(opset: int, trees: bool) -> str:
    """The onnxruntime a bundle needs: its opset's, and TreeEnsemble's when a task is a tree model."""
    need = ORT_MIN_FOR_OPSET[opset]
    if trees and tuple(map(int, ORT_MIN_FOR_ML_OPSET.split("."))) > tuple(map(int, need.split("."))):
        return ORT_MIN_FOR_ML_OPSET
    return need


def _plain_metrics(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}


def _worst(parity: dict) -> float:
    return max(v for k, v in parity.items() if isinstance(v, (int, float)))


def _fsync_dir_files(d: Path) -> None:
    for p in d.iterdir():
        with open(p, "rb") as fh:
            os.fsync(fh.fileno())
