"""The experiment file: typed dataclasses, validated when loaded.

Shape (see examples/configs/*.yaml)::

    project_name: network_threats
    output_dir: runs/network          # relative to the working directory
    sources:                          # named tabular data sources
      net: {path: ../data/net.jsonl}  # relative to this config file
    model: {backbone_type: sequential, hidden_sizes: [128, 64], ...}
    training: {epochs: 30, batch_size: 512, ...}
    tasks:
      - {name: threat, type: anomaly_detection, source: net, label: {column: label, ...}}
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

from jenga_edge.contract.errors import ConfigError
from jenga_edge.contract.typed import apply_overrides, bounded, build, fail, load_yaml

TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
NumericEncoding = Literal["standard", "log1p", "piecewise_linear", "none", "auto"]
ColumnKind = Literal["numeric", "boolean", "categorical"]
Scalar = Union[str, int, float, bool]


@dataclass
class MissingPolicy:
    """What a missing or unparsable-as-missing value becomes.

    numeric: the fitted statistic used to impute (inside the graph, so the edge
    only sends NaN). allow_missing_at_edge: whether the agent may score an event
    that lacks a field (imputed) or must reject it.
    """

    numeric: Literal["median", "mean", "zero"] = "median"
    allow_missing_at_edge: bool = True


@dataclass
class SourceConfig:
    path: str
    format: Literal["auto", "json", "jsonl", "csv"] = "auto"
    columns: Optional[list[str]] = None       # names for a headerless CSV
    features: Optional[list[str]] = None      # explicit feature list; else auto-detected
    ignore: list[str] = field(default_factory=list)
    id_column: Optional[str] = None
    kinds: dict[str, ColumnKind] = field(default_factory=dict)
    encoding: NumericEncoding = "auto"
    encodings: dict[str, NumericEncoding] = field(default_factory=dict)
    piecewise_bins: int = bounded(8, lo=2, hi=256)
    min_category_count: int = bounded(2, lo=1)
    max_categories: int = bounded(512, lo=1)
    missing: MissingPolicy = field(default_factory=MissingPolicy)
    limit: Optional[int] = bounded(None, lo=1)


@dataclass
class LabelConfig:
    """How a raw label column becomes a training target.

    Binary: `positive_labels` and/or `negative_labels` (raw values compared as
    strings, so 1, "1" and 1.0 match); without either, labels must be 0/1 or
    booleans. Multiclass: `classes` (raw values are class names), or `mapping`
    from raw value to class name. Rows whose raw value maps to nothing are an
    error unless `unmapped: drop` (e.g. attack categories over attack rows only).
    """

    column: str
    positive_labels: Optional[list[Scalar]] = None
    negative_labels: Optional[list[Scalar]] = None
    classes: Optional[list[str]] = None
    mapping: Optional[dict[Scalar, str]] = None
    unmapped: Literal["error", "drop"] = "error"


@dataclass
class TargetFpr:
    target_fpr: float = bounded(lo=0.0, hi=1.0)


ThresholdRule = Union[Literal["max_f1"], TargetFpr]


@dataclass
class TaskConfig:
    name: str
    type: Literal["anomaly_detection", "classification"]
    source: str
    label: LabelConfig
    mode: Literal["supervised", "novelty"] = "supervised"
    loss_weight: float = bounded(1.0, lo=0.0)
    class_weighting: Literal["balanced", "none"] = "balanced"
    threshold_rule: ThresholdRule = "max_f1"
    group_column: Optional[str] = None   # raw attack type, for the unseen-attack protocol


@dataclass
class ModelConfig:
    backbone_type: Literal["sequential"] = "sequential"
    hidden_sizes: list[int] = bounded(factory=lambda: [128, 64], nonempty=True)
    activation: Literal["relu", "gelu", "silu", "tanh"] = "gelu"
    normalization: Literal["layer", "batch", "none"] = "layer"
    dropout: float = bounded(0.1, lo=0.0, hi=0.9)
    adapter_dim: Optional[int] = bounded(None, lo=1)    # default: hidden_sizes[0]
    embedding_dim: Optional[int] = bounded(None, lo=1)  # default: by vocabulary size
    decoder_sizes: list[int] = field(default_factory=lambda: [64])


@dataclass
class EarlyStopping:
    metric: Literal["auto", "pr_auc", "roc_auc", "f1", "accuracy", "macro_f1"] = "auto"
    patience: int = bounded(5, lo=1)
    min_delta: float = bounded(0.0, lo=0.0)


@dataclass
class SentinelConfig:
    threshold: float = bounded(0.9, lo=0.0, hi=1.0)
    action_target: str = "firewall"
    phases: list[Literal["train", "evaluate", "predict"]] = field(
        default_factory=lambda: ["train", "evaluate", "predict"])
    alerts_file: Optional[str] = None   # JSON Lines; default: keep counts and a sample only


@dataclass
class NestedLearningConfig:
    """Slower, accumulated updates for the shared trunk (see trainer/callbacks.py)."""

    trunk_lr_scale: float = bounded(0.1, lo=0.0, hi=1.0)
    accumulate_steps: int = bounded(4, lo=1)


@dataclass
class CallbacksConfig:
    sentinel: Optional[SentinelConfig] = None
    nested_learning: Optional[NestedLearningConfig] = None


@dataclass
class TrainingConfig:
    epochs: int = bounded(30, lo=1)
    batch_size: int = bounded(512, lo=1)
    eval_batch_size: int = bounded(8192, lo=1)
    learning_rate: float = bounded(2e-3, lo=0.0)
    weight_decay: float = bounded(1e-4, lo=0.0)
    warmup_fraction: float = bounded(0.05, lo=0.0, hi=1.0)
    grad_clip: float = bounded(1.0, lo=0.0)
    seed: int = 42
    validation_fraction: float = bounded(0.2, lo=0.01, hi=0.9)
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    compile: Literal["none", "cuda_graph", "reduce_overhead"] = "none"
    task_sampling: Literal["round_robin", "proportional"] = "round_robin"
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    init_from: Optional[str] = None     # a best_model/ to continue training from
    progress: bool = True


@dataclass
class ExperimentConfig:
    project_name: str
    sources: dict[str, SourceConfig]
    tasks: list[TaskConfig] = bounded(nonempty=True, factory=list)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    output_dir: str = "runs/experiment"
    base_dir: str = "."    # where relative source paths resolve; set by the loader

    def to_dict(self) -> dict:
        return asdict(self)

    def source_path(self, name: str) -> Path:
        p = Path(self.sources[name].path)
        return p if p.is_absolute() else Path(self.base_dir) / p


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read, override, type-check and cross-check an experiment file."""
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    raw = apply_overrides(copy.deepcopy(raw), overrides)
    raw.setdefault("base_dir", str(Path(path).resolve().parent))
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: dict, source: str = "config", check_files: bool = True) -> ExperimentConfig:
    cfg: ExperimentConfig = build(ExperimentConfig, raw, source=source)
    _cross_check(cfg, source, check_files)
    return cfg


def _cross_check(cfg: ExperimentConfig, source: str, check_files: bool) -> None:
    if not cfg.sources:
        fail(source, "sources", "expected at least one data source")
    names = [t.name for t in cfg.tasks]
    for i, task in enumerate(cfg.tasks):
        where = f"tasks[{i}]"
        if not TASK_NAME.match(task.name):
            # Task names become graph file names and ONNX output prefixes (<task>.score).
            fail(source, f"{where}.name", f"{task.name!r}: expected letters, digits, '_' or '-', "
                 "starting with a letter or digit")
        if task.name in names[:i]:
            fail(source, f"{where}.name", f"task name {task.name!r} is used more than once")
        if task.source not in cfg.sources:
            close = difflib.get_close_matches(task.source, list(cfg.sources), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            fail(source, f"{where}.source", f"unknown source {task.source!r}{hint}; "
                 f"expected one of: {', '.join(cfg.sources)}")
        _check_label(task, where, source)
    if check_files:
        for name in cfg.sources:
            if not cfg.source_path(name).is_file():
                fail(source, f"sources.{name}.path", f"data file not found: {cfg.source_path(name)}")


def _check_label(task: TaskConfig, where: str, source: str) -> None:
    lab = task.label
    if task.type == "classification":
        if task.mode != "supervised":
            fail(source, f"{where}.mode", "novelty mode is only for anomaly_detection tasks")
        if lab.positive_labels or lab.negative_labels:
            fail(source, f"{where}.label", "positive_labels/negative_labels are for "
                 "anomaly_detection; a classification task uses classes or mapping")
        if lab.classes is not None and len(lab.classes) < 2:
            fail(source, f"{where}.label.classes", "expected at least two classes")
    else:
        if lab.classes is not None:
            fail(source, f"{where}.label.classes", "anomaly_detection is binary; use "
                 "positive_labels/negative_labels instead of classes")
        if lab.mapping is not None:
            fail(source, f"{where}.label.mapping", "anomaly_detection is binary; use "
                 "positive_labels/negative_labels instead of mapping")


def config_as_yaml_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    data = cfg.to_dict()
    data.pop("base_dir", None)
    return data
