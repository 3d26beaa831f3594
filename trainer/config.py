"""The experiment file: typed sections (msgspec Structs), validated when loaded.

Shape (see examples/configs/*.yaml; every key in docs/config-reference.md)::

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
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from jenga_edge.contract.errors import ConfigError
from jenga_edge.contract.events import EventModel
from jenga_edge.contract.schema import MAX_TEXT_BYTES, TextNormalize, Truncate
from jenga_edge.contract.tasks import TASK_KIND_NAMES, task_kind
from jenga_edge.contract.typed import Config, apply_overrides, convert, doc, load_yaml

from .encodings import ENCODINGS

TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Literal over names known at run time (msgspec validates against them); mypy cannot
# read a Literal built from a variable, hence the ignores. The tuple is built apart: on
# Python >= 3.11 mypy reads `Literal[(*a, b)]` as 3.11-only `Literal[*a, b]` syntax.
_ENCODING_CHOICES = (*ENCODINGS, "auto")
NumericEncoding = Literal[_ENCODING_CHOICES]  # type: ignore[valid-type]
TaskType = Literal[TASK_KIND_NAMES]  # type: ignore[valid-type]
ColumnKind = Literal["numeric", "boolean", "categorical", "text"]
Scalar = str | int | float | bool
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]


class MissingPolicy(Config, kw_only=True):
    """What a missing value becomes."""

    numeric: Annotated[
        Literal["median", "mean", "zero"],
        doc(
            "the training-split statistic a missing numeric value is imputed with (inside the graph, "
            "so the agent only sends NaN)"
        ),
    ] = "median"
    allow_missing_at_edge: Annotated[
        bool,
        doc(
            "whether the agent may score an event that lacks a feature (imputed) or must reject it "
            "(reason missing_field)"
        ),
    ] = True


class TextColumn(Config, kw_only=True):
    """How a `kind: text` column becomes bytes (jenga_edge/contract/text_input.py: the one rule the
    trainer and the agent share)."""

    max_bytes: Annotated[
        int, doc("UTF-8 bytes kept per value; a longer value is cut (never rejected)", ge=1, le=MAX_TEXT_BYTES)
    ] = 64
    normalize: Annotated[
        TextNormalize,
        doc("dns: ASCII letters lower-cased and trailing dots stripped, as resolvers compare names; none: as is"),
    ] = "none"
    truncate: Annotated[
        Truncate,
        doc("which end a cut keeps: head (the start) or tail (the end: a DNS name's registered domain and TLD)"),
    ] = "head"
    allow_missing: Annotated[
        bool | None,
        doc(
            "whether the agent may score an event without this field (as empty text); "
            "default: missing.allow_missing_at_edge"
        ),
    ] = None


class SourceConfig(Config, kw_only=True):
    """One data source: where its rows are and how its features are fitted (tabular, text or both)."""

    path: Annotated[
        str | list[str],
        doc(
            "JSON array, JSON Lines or CSV file, relative to the config file; or a list of such files, "
            "read in order as one source, each from a fresh start of the event model's windows "
            "(separate captures: a host's windows never span two files)"
        ),
    ]
    format: Annotated[
        Literal["auto", "json", "jsonl", "csv"],
        doc("file format; auto decides by the suffix (.json, .jsonl/.ndjson, .csv/.tsv/.txt)"),
    ] = "auto"
    columns: Annotated[list[str] | None, doc("column names of a CSV file without a header (NSL-KDD)")] = None
    features: Annotated[
        list[str] | None,
        doc("explicit feature columns; default: every column but label, group and id columns and `ignore`"),
    ] = None
    ignore: Annotated[list[str], doc("columns that are never features (addresses, free text)")] = []
    id_column: Annotated[str | None, doc("column whose value identifies a row in alerts (default: its number)")] = None
    kinds: Annotated[
        dict[str, ColumnKind],
        doc(
            "override the inferred kind of a column: numeric, boolean or categorical; text (never inferred): "
            "its UTF-8 bytes, read by the model's text backbone (settings in `text`)"
        ),
    ] = {}
    text: Annotated[
        dict[str, TextColumn], doc("settings per `kind: text` column (default: max_bytes 64, normalize none, head)")
    ] = {}
    encoding: Annotated[
        NumericEncoding,
        doc(
            "numeric encoding of every numeric column (see trainer/encodings.py); auto: log1p for a "
            "non-negative heavy-tailed column, standard otherwise"
        ),
    ] = "auto"
    encodings: Annotated[dict[str, NumericEncoding], doc("numeric encoding per column, over `encoding`")] = {}
    piecewise_bins: Annotated[int, doc("quantile bins of a piecewise_linear column", ge=2, le=256)] = 8
    min_category_count: Annotated[
        int, doc("a category seen fewer times in training joins the out-of-vocabulary bucket", ge=1)
    ] = 2
    max_categories: Annotated[int, doc("the most frequent categories kept per column", ge=1)] = 512
    missing: Annotated[MissingPolicy, doc("missing values")] = msgspec.field(default_factory=MissingPolicy)
    limit: Annotated[PositiveInt | None, doc("read at most this many rows (for quick runs)")] = None
    events: Annotated[
        EventModel | None,
        doc(
            "how nested records (Suricata eve.json) become rows: where filter, mapping to dotted paths, "
            "normalizers, derived fields; carried in the bundle, so the agent reads events the same way"
        ),
    ] = None


class LabelConfig(Config, kw_only=True):
    """How a raw label column becomes a training target.

    Binary: `positive_labels` and/or `negative_labels` (raw values compared as
    strings, so 1, "1" and 1.0 match); without either, labels must be 0/1 or
    booleans. Multiclass: `classes` (raw values are class names), or `mapping`
    from raw value to class name. Rows whose raw value maps to nothing are an
    error unless `unmapped: drop` (e.g. attack categories over attack rows only).
    """

    column: Annotated[str, doc("the label column")]
    positive_labels: Annotated[
        list[Scalar] | None, doc("binary: raw values that mean threat (with only these, every other value is normal)")
    ] = None
    negative_labels: Annotated[
        list[Scalar] | None, doc("binary: raw values that mean normal (with only these, every other value is a threat)")
    ] = None
    classes: Annotated[list[str] | None, doc("multiclass: the class names, in output order")] = None
    mapping: Annotated[dict[Scalar, str] | None, doc("multiclass: raw value -> class name")] = None
    unmapped: Annotated[
        Literal["error", "drop"],
        doc("a raw value that maps to no class: an error, or the row is left out of this task"),
    ] = "error"


class TargetFpr(Config, kw_only=True):
    target_fpr: Annotated[
        float, doc("the threshold with at most this false-positive rate on the validation rows", ge=0.0, le=1.0)
    ]


ThresholdRule = Literal["max_f1"] | TargetFpr


class LightGBMLearner(Config, kw_only=True):
    """A gradient-boosted tree model (LightGBM, the `[trees]` extra) in place of the task's head.

    It learns from the raw vectorized rows (numeric with NaN, categorical vocabulary indices as
    LightGBM categories), stops early on the validation split and is exported as an ONNX-ML
    TreeEnsemble graph (export/tree_onnx.py). It does not use the shared trunk."""

    kind: Annotated[Literal["lightgbm"], doc("the library: lightgbm")]
    n_estimators: Annotated[int, doc("the most boosting rounds (early stopping may end sooner)", ge=1)] = 1000
    learning_rate: Annotated[float, doc("shrinkage per round", gt=0.0)] = 0.05
    num_leaves: Annotated[int, doc("leaves per tree", ge=2, le=131072)] = 31
    max_depth: Annotated[int, doc("depth limit of a tree (-1: none)", ge=-1)] = -1
    min_child_samples: Annotated[int, doc("fewest training rows in a leaf", ge=1)] = 20
    subsample: Annotated[float, doc("share of rows each round samples (bagging; 1: all)", gt=0.0, le=1.0)] = 1.0
    colsample: Annotated[float, doc("share of features each tree samples (1: all)", gt=0.0, le=1.0)] = 1.0
    reg_lambda: Annotated[float, doc("L2 regularization of leaf values", ge=0.0)] = 0.0
    early_stopping_rounds: Annotated[
        int,
        doc(
            "stop after this many rounds without a gain on the validation split (metric: "
            "training.early_stopping.metric: pr_auc or roc_auc, else the log loss)",
            ge=1,
        ),
    ] = 50
    num_threads: Annotated[int, doc("LightGBM threads (0: its default, one per core)", ge=0)] = 0
    refit: Annotated[
        bool,
        doc(
            "after early stopping, boost again on the training and validation rows together, for the kept "
            "rounds scaled by the rows added; the threshold and the reported metrics stay those of the "
            "early-stopped model on the validation rows it never saw"
        ),
    ] = False


Learner = Literal["network", "lightgbm"] | LightGBMLearner


class TaskConfig(Config, kw_only=True):
    """One task: a head on the shared trunk."""

    name: Annotated[str, doc("letters, digits, '_' or '-'; names the graph file and its outputs")]
    type: Annotated[TaskType, doc("anomaly_detection (binary, with a threshold) or classification (multiclass)")]
    source: Annotated[str, doc("the source (key of `sources`) the task reads")]
    label: Annotated[LabelConfig, doc("the target")]
    mode: Annotated[
        Literal["supervised", "novelty", "distance", "fused"],
        doc(
            "novelty: an autoencoder learned from normal rows only; distance: the Mahalanobis distance "
            "of the shared trunk's output from normal training rows (no head to train); fused: one "
            "calibrated score from the tasks in `combine` (anomaly_detection only)"
        ),
    ] = "supervised"
    combine: Annotated[
        list[str] | None,
        doc(
            "fused: the binary tasks of the same source it combines (e.g. [attack, novelty]); each "
            "member's score becomes a p-value against normal validation rows"
        ),
    ] = None
    combination: Annotated[
        Literal["fisher", "cauchy", "min_p"],
        doc("fused: how the members' p-values combine: Fisher's -2 sum log p, the Cauchy combination, or min-p"),
    ] = "fisher"
    loss_weight: Annotated[float, doc("weight of this task's loss in the shared trunk", ge=0.0)] = 1.0
    class_weighting: Annotated[Literal["balanced", "none"], doc("balanced: classes weighted by inverse frequency")] = (
        "balanced"
    )
    threshold_rule: Annotated[
        ThresholdRule, doc("binary tasks: max_f1, or {target_fpr: F}; the bundle carries the threshold")
    ] = "max_f1"
    group_column: Annotated[
        str | None, doc("raw attack type per row, for `jenga-train holdout` (default: the label column)")
    ] = None
    learner: Annotated[
        Learner,
        doc(
            "network: a head on the shared trunk; lightgbm or {kind: lightgbm, ...}: a tree model of "
            "its own (supervised tasks; needs the [trees] extra)"
        ),
    ] = "network"

    def tree_learner(self) -> LightGBMLearner | None:
        """The tree model's settings, or None for a network head."""
        if isinstance(self.learner, LightGBMLearner):
            return self.learner
        return LightGBMLearner(kind="lightgbm") if self.learner == "lightgbm" else None


class PeriodicConfig(Config, kw_only=True):
    """Sizes of the `periodic` numeric encoding (trainer/encodings.py)."""

    frequencies: Annotated[int, doc("learned frequencies per feature (2 x this cos/sin values)", ge=1, le=128)] = 16
    width: Annotated[int, doc("columns per feature after its linear layer and ReLU", ge=1, le=128)] = 16
    sigma: Annotated[
        float, doc("the frequencies start as N(0, sigma^2), on the unit-variance quantile rank", gt=0.0)
    ] = 1.0


# Each option is passed to the backbone only when set, so an unset one keeps the default of
# trainer/text_backbones.py (tuned there, not repeated here).
CNN_OPTIONS = ("embedding_dim", "channels", "widths", "pool")
TRANSFORMER_OPTIONS = ("d_model", "heads", "layers", "ff")


class TextModelConfig(Config, kw_only=True):
    """The byte-level backbone of every text feature (trainer/text_backbones.py). Unset sizes keep
    the backbone's defaults."""

    backbone: Annotated[
        Literal["cnn", "transformer"],
        doc("cnn: byte embeddings, n-gram convolutions, max/mean-pooled; transformer: a tiny one, mean-pooled"),
    ] = "cnn"
    embedding_dim: Annotated[PositiveInt | None, doc("cnn: byte embedding width")] = None
    channels: Annotated[PositiveInt | None, doc("cnn: filters per convolution width")] = None
    widths: Annotated[
        Annotated[list[Annotated[int, msgspec.Meta(ge=1, le=32)]], msgspec.Meta(min_length=1)] | None,
        doc("cnn: convolution widths (byte n-gram lengths)"),
    ] = None
    pool: Annotated[
        Literal["max", "maxmean"] | None,
        doc("cnn: max-pool the detectors over the text, or max and mean (default; better on unseen DGA families)"),
    ] = None
    d_model: Annotated[PositiveInt | None, doc("transformer: model width (a multiple of heads)")] = None
    heads: Annotated[PositiveInt | None, doc("transformer: attention heads")] = None
    layers: Annotated[PositiveInt | None, doc("transformer: attention blocks")] = None
    ff: Annotated[PositiveInt | None, doc("transformer: feed-forward width")] = None

    def options(self) -> dict[str, Any]:
        """The backbone's keyword arguments: the options that are set."""
        names = CNN_OPTIONS if self.backbone == "cnn" else TRANSFORMER_OPTIONS
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


class ModelConfig(Config, kw_only=True):
    """Per-source adapters (tabular encoder and/or text backbone) -> a trunk -> one head per task."""

    backbone_type: Annotated[Literal["sequential"], doc("the trunk: an MLP")] = "sequential"
    trunk: Annotated[
        Literal["shared", "per_source"],
        doc(
            "shared: every source's adapter feeds one trunk; per_source: each source has a trunk of its own "
            "(its tasks still share it), e.g. a text source and a tabular source side by side"
        ),
    ] = "shared"
    text: Annotated[TextModelConfig, doc("the text backbone, for sources with `kind: text` columns")] = msgspec.field(
        default_factory=TextModelConfig
    )
    hidden_sizes: Annotated[list[PositiveInt], doc("widths of the trunk's layers", min_length=1)] = msgspec.field(
        default_factory=lambda: [128, 64]
    )
    activation: Annotated[Literal["relu", "gelu", "silu", "tanh"], doc("activation")] = "gelu"
    normalization: Annotated[Literal["layer", "batch", "none"], doc("normalization after each layer")] = "layer"
    dropout: Annotated[float, doc("dropout after each layer", ge=0.0, le=0.9)] = 0.1
    adapter_dim: Annotated[PositiveInt | None, doc("per-source adapter width (default: hidden_sizes[0])")] = None
    embedding_dim: Annotated[
        PositiveInt | None, doc("categorical embedding width (default: from the largest vocabulary)")
    ] = None
    decoder_sizes: Annotated[list[int], doc("hidden widths of novelty autoencoder heads")] = msgspec.field(
        default_factory=lambda: [64]
    )
    ensemble: Annotated[
        int,
        doc(
            "k > 1: TabM-mini ensemble, k members sharing every weight but a per-member scale of the "
            "encoded input and their own heads; trained on the mean of their losses, scored by the mean "
            "of their probabilities, in one graph. Novelty heads read the members' mean representation. "
            "1: one plain network",
            ge=1,
            le=64,
        ),
    ] = 1
    periodic: Annotated[PeriodicConfig, doc("the `periodic` numeric encoding's sizes")] = msgspec.field(
        default_factory=PeriodicConfig
    )


class EarlyStopping(Config, kw_only=True):
    metric: Annotated[
        Literal["auto", "pr_auc", "roc_auc", "f1", "accuracy", "macro_f1"],
        doc(
            "the validation metric that picks the best epoch; auto: PR-AUC for binary tasks, "
            "macro-F1 for multiclass (averaged over tasks)"
        ),
    ] = "auto"
    patience: Annotated[int, doc("stop after this many epochs without a gain", ge=1)] = 5
    min_delta: Annotated[float, doc("the smallest gain that resets the patience", ge=0.0)] = 0.0


class SentinelConfig(Config, kw_only=True):
    """Alerts on scores during training, evaluation and prediction (trainer/callbacks.py)."""

    threshold: Annotated[float, doc("alert on binary scores at or above this", ge=0.0, le=1.0)] = 0.9
    action_target: Annotated[str, doc("the action an alert recommends")] = "firewall"
    phases: Annotated[list[Literal["train", "evaluate", "predict"]], doc("when it watches")] = msgspec.field(
        default_factory=lambda: ["train", "evaluate", "predict"]
    )
    alerts_file: Annotated[str | None, doc("write alerts as JSON Lines here (default: counts and a sample)")] = None


class NestedLearningConfig(Config, kw_only=True):
    """Slower, accumulated updates for the shared trunk (see trainer/callbacks.py)."""

    trunk_lr_scale: Annotated[float, doc("the trunk's learning rate, relative to the heads'", ge=0.0, le=1.0)] = 0.1
    accumulate_steps: Annotated[int, doc("trunk gradients are applied every this many steps", ge=1)] = 4


class CallbacksConfig(Config, kw_only=True):
    sentinel: Annotated[SentinelConfig | None, doc("the security sentinel (on when present)")] = None
    nested_learning: Annotated[NestedLearningConfig | None, doc("nested learning (on when present)")] = None


class TrainingConfig(Config, kw_only=True):
    epochs: Annotated[int, doc("the most epochs (early stopping may end sooner)", ge=1)] = 30
    batch_size: Annotated[int, doc("rows per step", ge=1)] = 512
    eval_batch_size: Annotated[int, doc("rows per forward pass when scoring", ge=1)] = 8192
    learning_rate: Annotated[float, doc("AdamW peak learning rate (linear warm-up, cosine decay)", ge=0.0)] = 2e-3
    weight_decay: Annotated[float, doc("AdamW weight decay (weights only)", ge=0.0)] = 1e-4
    warmup_fraction: Annotated[float, doc("share of all steps spent warming up", ge=0.0, le=1.0)] = 0.05
    grad_clip: Annotated[float, doc("clip the gradient norm to this (0: off)", ge=0.0)] = 1.0
    seed: Annotated[int, doc("seeds the split, the initialisation and the batches")] = 42
    validation_fraction: Annotated[float, doc("share of rows held out for validation", ge=0.01, le=0.9)] = 0.2
    split: Annotated[
        Literal["random", "time", "group"],
        doc(
            "how validation rows are chosen: random (seeded shuffle); time: the latest rows by "
            "split_column; group: whole groups of split_column's values, so no group is on both sides"
        ),
    ] = "random"
    split_column: Annotated[
        str | None,
        doc("time: a timestamp column (numbers or ISO-8601 text); group: the grouping column. Not a feature"),
    ] = None
    min_validation_positives: Annotated[
        int,
        doc("warn when a binary task's validation rows hold fewer positives than this (one that needs them)", ge=0),
    ] = 10
    early_stopping: Annotated[EarlyStopping, doc("best-epoch selection")] = msgspec.field(default_factory=EarlyStopping)
    device: Annotated[Literal["auto", "cpu", "cuda"], doc("auto: cuda when torch sees a GPU")] = "auto"
    precision: Annotated[Literal["auto", "fp32", "bf16"], doc("auto: bf16 autocast on CUDA, fp32 on CPU")] = "auto"
    compile: Annotated[
        Literal["none", "cuda_graph", "reduce_overhead"],
        doc("torch.compile mode (reduce_overhead captures CUDA graphs)"),
    ] = "none"
    task_sampling: Annotated[
        Literal["round_robin", "proportional"],
        doc("which task each step trains: in turn, or in proportion to its rows"),
    ] = "round_robin"
    callbacks: Annotated[CallbacksConfig, doc("optional callbacks")] = msgspec.field(default_factory=CallbacksConfig)
    init_from: Annotated[str | None, doc("a best_model/ to continue training from (keeps its schemas)")] = None
    progress: Annotated[bool, doc("print a line per epoch")] = True


class ExperimentConfig(Config, kw_only=True):
    """An experiment file."""

    project_name: Annotated[str, doc("names the run, the model and the bundle")]
    sources: Annotated[dict[str, SourceConfig], doc("named data sources (tabular, text or both)")]
    tasks: Annotated[list[TaskConfig], doc("the tasks, each a head on the shared trunk", min_length=1)]
    model: Annotated[ModelConfig, doc("the network")] = msgspec.field(default_factory=ModelConfig)
    training: Annotated[TrainingConfig, doc("the training loop")] = msgspec.field(default_factory=TrainingConfig)
    output_dir: Annotated[str, doc("where the run is written (relative to the working directory)")] = "runs/experiment"
    base_dir: Annotated[str, doc("where relative source paths resolve (set by the loader)")] = "."

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    def source_paths(self, name: str) -> list[Path]:
        """The files of source `name`, in order (one, unless `path` is a list)."""
        raw = self.sources[name].path
        paths = [Path(p) for p in ([raw] if isinstance(raw, str) else raw)]
        return [p if p.is_absolute() else Path(self.base_dir) / p for p in paths]


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read, override, type-check and cross-check an experiment file."""
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    raw = apply_overrides(copy.deepcopy(raw), overrides)
    raw.setdefault("base_dir", str(Path(path).resolve().parent))
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: dict[str, Any], source: str = "config", check_files: bool = True) -> ExperimentConfig:
    cfg = convert(ExperimentConfig, raw, source=source)
    _cross_check(cfg, source, check_files)
    return cfg


def _fail(source: str, path: str, message: str) -> None:
    raise ConfigError(f"{source}: {path}: {message}")


def _cross_check(cfg: ExperimentConfig, source: str, check_files: bool) -> None:
    if not cfg.sources:
        _fail(source, "sources", "expected at least one data source")
    names = [t.name for t in cfg.tasks]
    for i, task in enumerate(cfg.tasks):
        where = f"tasks[{i}]"
        if not TASK_NAME.match(task.name):
            # Task names become graph file names and ONNX output prefixes (<task>.score).
            _fail(
                source,
                f"{where}.name",
                f"{task.name!r}: expected letters, digits, '_' or '-', starting with a letter or digit",
            )
        if task.name in names[:i]:
            _fail(source, f"{where}.name", f"task name {task.name!r} is used more than once")
        if task.source not in cfg.sources:
            close = difflib.get_close_matches(task.source, list(cfg.sources), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            _fail(
                source,
                f"{where}.source",
                f"unknown source {task.source!r}{hint}; expected one of: {', '.join(cfg.sources)}",
            )
        if task.mode not in task_kind(task.type).modes:
            _fail(
                source,
                f"{where}.mode",
                f"{task.mode} mode is not for {task.type} tasks (it has: {', '.join(task_kind(task.type).modes)})",
            )
        if task.learner != "network" and task.mode != "supervised":
            _fail(
                source,
                f"{where}.learner",
                f"a tree model is for supervised tasks; mode: {task.mode} uses the network (learner: network)",
            )
        _check_label(task, where, source)
        _check_fused(cfg, i, source)
        _check_text_task(cfg, i, source)
    for name, scfg in cfg.sources.items():
        if isinstance(scfg.path, list) and not scfg.path:
            _fail(source, f"sources.{name}.path", "expected a file or a non-empty list of files, got []")
        _check_text_columns(scfg, f"sources.{name}", source)
        _check_transformer_widths(cfg.model.text, scfg, f"sources.{name}", source)
    _check_text_model(cfg.model.text, source)
    _check_split(cfg.training, source)
    if cfg.model.ensemble > 1 and cfg.model.normalization == "batch":
        # BatchNorm1d over [batch, k, width] would normalise over members, not features.
        _fail(source, "model.ensemble", "an ensemble (k > 1) needs normalization: layer or none, not batch")
    if check_files:
        for name in cfg.sources:
            for p in cfg.source_paths(name):
                if not p.is_file():
                    _fail(source, f"sources.{name}.path", f"data file not found: {p}")


def text_columns(scfg: SourceConfig) -> list[str]:
    """The source's `kind: text` columns (text is never inferred)."""
    return [col for col, kind in scfg.kinds.items() if kind == "text"]


def _check_text_columns(scfg: SourceConfig, where: str, source: str) -> None:
    """`text` settings belong to `kind: text` columns only: one elsewhere is a typo."""
    text = text_columns(scfg)
    for col in scfg.text:
        if col not in text:
            _fail(source, f"{where}.text.{col}", f"is not a text column; declare it with kinds: {{{col}: text}}")
    for col in text:
        if col in scfg.encodings:
            _fail(source, f"{where}.encodings.{col}", "a text column has no numeric encoding (the graph embeds bytes)")


def _check_text_task(cfg: ExperimentConfig, i: int, source: str) -> None:
    """A tree model reads numbers and categories, and a novelty autoencoder rebuilds its fixed
    input view: neither is defined on bytes, so both are refused on a source with text."""
    task, where = cfg.tasks[i], f"tasks[{i}]"
    scfg = cfg.sources.get(task.source)
    text = text_columns(scfg) if scfg is not None else []
    if not text:
        return
    if task.tree_learner() is not None:
        _fail(
            source,
            f"{where}.learner",
            f"source {task.source!r} has text columns ({', '.join(text)}); a tree model reads numbers and "
            "categories only: use learner: network",
        )
    if task.mode == "novelty":
        _fail(
            source,
            f"{where}.mode",
            f"novelty is not supported on source {task.source!r}, which has text columns ({', '.join(text)}); "
            "use supervised, distance or fused",
        )


def _check_transformer_widths(tcfg: TextModelConfig, scfg: SourceConfig, where: str, source: str) -> None:
    """The transformer's learned positions are max_bytes long per feature, while a batch's bytes
    axis is as wide as the source's widest text (text_width): its text columns must share one
    max_bytes (until TextEncoder cuts each feature's ids to its own limit)."""
    limits = {(scfg.text.get(col) or TextColumn()).max_bytes for col in text_columns(scfg)}
    if tcfg.backbone == "transformer" and len(limits) > 1:
        _fail(
            source,
            f"{where}.text",
            f"backbone transformer needs one max_bytes for all text columns of a source, got "
            f"{', '.join(map(str, sorted(limits)))} (or use backbone: cnn)",
        )


def _check_text_model(tcfg: TextModelConfig, source: str) -> None:
    other = TRANSFORMER_OPTIONS if tcfg.backbone == "cnn" else CNN_OPTIONS
    for name in other:
        if getattr(tcfg, name) is not None:
            _fail(source, f"model.text.{name}", f"is not an option of backbone {tcfg.backbone}")
    if tcfg.d_model is not None and tcfg.heads is not None and tcfg.d_model % tcfg.heads:
        _fail(source, "model.text.d_model", f"{tcfg.d_model} must be a multiple of heads ({tcfg.heads})")


def _check_split(tcfg: TrainingConfig, source: str) -> None:
    if tcfg.split != "random" and not tcfg.split_column:
        _fail(source, "training.split_column", f"split: {tcfg.split} needs the column it splits by")
    if tcfg.split == "random" and tcfg.split_column:
        _fail(source, "training.split_column", "is only for split: time or split: group (split is random)")


def _check_fused(cfg: ExperimentConfig, i: int, source: str) -> None:
    """A fused task combines binary tasks of its own source that have heads (not fused
    themselves); it has no head and no loss of its own. Neither has a distance task, so
    their source needs a task that trains the trunk."""
    task, where = cfg.tasks[i], f"tasks[{i}]"
    trained = [
        t
        for t in cfg.tasks
        if t.source == task.source and t.mode in ("supervised", "novelty") and t.tree_learner() is None
    ]
    if task.mode in ("distance", "fused") and not trained:
        _fail(
            source,
            f"{where}.mode",
            f"mode: {task.mode} trains nothing itself; source {task.source!r} needs a supervised or novelty task "
            "to train the shared trunk",
        )
    if task.mode != "fused":
        if task.combine is not None:
            _fail(source, f"{where}.combine", f"is only for mode: fused (this task is {task.mode})")
        return
    if not task.combine or len(task.combine) < 2:
        _fail(source, f"{where}.combine", "mode: fused needs at least two member tasks to combine")
    assert task.combine is not None  # for the checker: _fail raised otherwise
    by_name = {t.name: t for t in cfg.tasks}
    for j, member in enumerate(task.combine):
        at = f"{where}.combine[{j}]"
        other = by_name.get(member)
        if other is None:
            _fail(source, at, f"unknown task {member!r}; expected one of: {', '.join(by_name)}")
        elif member in task.combine[:j]:
            _fail(source, at, f"task {member!r} is named twice")
        elif other.mode == "fused":
            _fail(source, at, f"task {member!r} is fused itself; combine tasks that have a head")
        elif other.tree_learner() is not None:
            _fail(source, at, f"task {member!r} is a tree model; a fused task combines heads of the network")
        elif not task_kind(other.type).binary:
            _fail(source, at, f"task {member!r} is {other.type}; a fused task combines binary tasks")
        elif other.source != task.source:
            _fail(source, at, f"task {member!r} reads source {other.source!r}, this task reads {task.source!r}")


def _check_label(task: TaskConfig, where: str, source: str) -> None:
    lab = task.label
    if not task_kind(task.type).binary:
        if lab.positive_labels or lab.negative_labels:
            _fail(
                source,
                f"{where}.label",
                f"positive_labels/negative_labels are for binary tasks; a {task.type} task uses classes or mapping",
            )
        if lab.classes is not None and len(lab.classes) < 2:
            _fail(source, f"{where}.label.classes", "expected at least two classes")
    else:
        for key in ("classes", "mapping"):
            if getattr(lab, key) is not None:
                _fail(
                    source,
                    f"{where}.label.{key}",
                    f"{task.type} is binary; use positive_labels/negative_labels instead of {key}",
                )


def config_as_yaml_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    data = cfg.to_dict()
    data.pop("base_dir", None)
    return data
