"""best_model/: weights + everything needed to rebuild, score and export the model.

best_model/
  model.json    format + version, resolved config, per-source feature schemas,
                per-task type/mode/source/labels/threshold/validation metrics,
                weights file name and sha256
  weights.pt    the state_dict, loadable with torch.load(weights_only=True)
  <task>.lightgbm.txt
                a tree-model task's booster (LightGBM's text format), named with
                its sha256 in the task's `learner` entry; such a task has no head
                in weights.pt
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from jenga_edge.contract.digest import sha256_file
from jenga_edge.contract.errors import BundleError
from jenga_edge.contract.schema import FeatureSchema
from jenga_edge.contract.typed import convert

from .config import ExperimentConfig, ModelConfig, config_as_yaml_dict
from .labels import LabelMap
from .model import MultiTaskModel, TaskSpec
from .trees import TreeModel

FORMAT = "jenga.best_model"
FORMAT_VERSION = 2  # 2: jenga 0.2 (numeric encodings as one module each)
META_FILE, WEIGHTS_FILE = "model.json", "weights.pt"


@dataclass
class LoadedModel:
    model: MultiTaskModel
    meta: dict
    schemas: dict[str, FeatureSchema]
    labels: dict[str, LabelMap]
    trees: dict[str, TreeModel] = field(default_factory=dict)  # tree-model tasks (learner: lightgbm)

    def task(self, name: str) -> dict:
        for t in self.meta["tasks"]:
            if t["name"] == name:
                return t
        raise BundleError(f"unknown task {name!r}; the model has: {', '.join(t['name'] for t in self.meta['tasks'])}")


def save(
    out_dir: Path,
    model: MultiTaskModel,
    cfg: ExperimentConfig,
    sources: dict,
    tasks: list,
    result: Any,
    trees: dict[str, TreeModel] | None = None,
) -> Path:
    """Write best_model/ atomically enough: weights and boosters first, then the metadata naming them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / WEIGHTS_FILE
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, weights)
    learners = {name: _save_tree(out_dir, name, tree) for name, tree in (trees or {}).items()}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "project_name": cfg.project_name,
        "torch_version": torch.__version__,
        "config": config_as_yaml_dict(cfg),
        # Absolute, so jenga-export can find the validation rows for its parity check: a
        # list of files per source (one, unless its `path` is a list).
        "data_paths": {n: [str(p.resolve()) for p in cfg.source_paths(n)] for n in sources},
        "schemas": {n: s.schema.to_json() for n, s in sources.items()},
        "schema_sha256": {n: s.schema.sha256 for n, s in sources.items()},
        "tasks": [
            {
                "name": t.name,
                "type": t.cfg.type,
                "mode": t.cfg.mode,
                "source": t.source,
                "labels": t.labels.to_json(),
                "threshold": result.thresholds.get(t.name),
                "metrics": result.metrics.get(t.name, {}),
                **({"learner": learners[t.name]} if t.name in learners else {}),
            }
            for t in tasks
        ],
        "best_epoch": result.best_epoch,
        "selection_score": result.best_score,
        "summary": result.summary,
        "weights": {"file": WEIGHTS_FILE, "sha256": sha256_file(weights)},
    }
    tmp = out_dir / (META_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2, default=_jsonable)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out_dir / META_FILE)
    return out_dir


def _save_tree(out_dir: Path, name: str, tree: TreeModel) -> dict:
    path = out_dir / f"{name}.lightgbm.txt"
    path.write_text(tree.to_string(), encoding="utf-8")
    return {"kind": "lightgbm", "file": path.name, "sha256": sha256_file(path), "best_iteration": tree.best_iteration}


def _load_tree(d: Path, meta_path: Path, task: dict, n_classes: int) -> TreeModel:
    entry = task["learner"]
    name = entry["file"]
    if (
        entry.get("kind") != "lightgbm"
        or not isinstance(name, str)
        or Path(name).name != name
        or name in ("", ".", "..")
    ):
        raise BundleError(
            f"{meta_path}: task {task['name']!r}: learner must name a lightgbm booster file, got {entry!r}"
        )
    path = d / name
    if not path.is_file() or sha256_file(path) != entry["sha256"]:
        raise BundleError(f"{path}: missing or its sha256 does not match {META_FILE}")
    return TreeModel.from_string(path.read_text(encoding="utf-8"), n_classes)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def load(model_dir: str | Path, device: str = "cpu") -> LoadedModel:
    d = Path(model_dir)
    meta_path = d / META_FILE
    if not meta_path.is_file():
        raise BundleError(
            f"{d}: not a best_model directory (no {META_FILE}); point at OUTPUT_DIR/best_model written by jenga-train"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{meta_path}: invalid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise BundleError(f"{meta_path}: expected a JSON object")
    if meta.get("format") != FORMAT:
        raise BundleError(f"{meta_path}: format is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        hint = (
            "; it was written by jenga-train 0.1: train it again with this version"
            if meta.get("format_version") == 1
            else ""
        )
        raise BundleError(
            f"{meta_path}: format_version {meta.get('format_version')} is not "
            f"supported (this build reads {FORMAT_VERSION}){hint}"
        )
    try:
        name = meta["weights"]["file"]
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise BundleError(f"{meta_path}: weights.file must be a plain file name, got {name!r}")
        weights = d / name
        if not weights.is_file() or sha256_file(weights) != meta["weights"]["sha256"]:
            raise BundleError(f"{weights}: missing or its sha256 does not match {META_FILE}")
        schemas = {n: FeatureSchema.from_json(s) for n, s in meta["schemas"].items()}
        labels = {t["name"]: LabelMap.from_json(t["labels"]) for t in meta["tasks"]}
        specs = [_task_spec(t, labels, meta) for t in meta["tasks"] if "learner" not in t]
        trees = {
            t["name"]: _load_tree(d, meta_path, t, len(labels[t["name"]].classes))
            for t in meta["tasks"]
            if "learner" in t
        }
        model = MultiTaskModel(schemas, specs, model_config(meta))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BundleError(f"{meta_path}: malformed ({type(exc).__name__}: {exc})") from None
    state = torch.load(weights, map_location=device, weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BundleError(
            f"{weights}: weights do not fit the architecture described in {META_FILE} "
            f"(saved by another version of the trainer?): {str(exc).splitlines()[0]}"
        ) from None
    model.to(device).eval()
    return LoadedModel(model, meta, schemas, labels, trees)


def _task_spec(t: dict, labels: dict[str, LabelMap], meta: dict) -> TaskSpec:
    """A task's spec; a fused task's members and combination are in the resolved config."""
    cfg: dict = next((c for c in meta["config"]["tasks"] if c["name"] == t["name"]), {})
    members = tuple(cfg.get("combine") or ())
    return TaskSpec(
        t["name"],
        t["type"],
        t["mode"],
        t["source"],
        len(labels[t["name"]].classes),
        members,
        cfg.get("combination", "fisher"),
    )


def model_config(meta: dict) -> ModelConfig:
    return convert(ModelConfig, meta["config"]["model"], source=META_FILE)
