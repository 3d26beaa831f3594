"""Multitask model: per-source adapters -> a trunk -> one head per task.

Each source's FeatureEncoder applies the fitted schema inside the network
(imputation, log1p, standard scaling, piecewise-linear bins, embeddings), so
the exported graph takes the raw vectorized event and nothing is done twice.

Inputs (the polymorphic forward): a batch holds tabular `features` (numeric,
categorical), text `input_ids`/`attention_mask` (trainer/text_backbones.py's
text_ids of the schema's text_bytes/text_lengths), or both. A source whose
schema has text features gets a TextEncoder in its adapter; its vector is
concatenated with the tabular encoder's before the adapter's projection, so
a source may mix a domain name with numeric columns. `input_features` (audio)
is refused with UnsupportedInput.

Trunks (`model.trunk`): `shared` (the default, the model as it always was,
bit for bit) runs every source's adapter into one trunk; `per_source` gives
each source a trunk of its own (`trunk` is then a ModuleDict keyed by source),
so a text source and a tabular source learn apart while each source's tasks
(DGA vs benign and the DGA family, say) still share theirs. Everything that
treats "the trunk" as a group of weights (the optimizer's trunk group, nested
learning, trunk_parameter_names) reads `model.trunk` either way.

`model.ensemble: k > 1` makes it a TabM-mini ensemble (Gorishniy et al. 2024):
each source's encoded vector is multiplied by k per-member scales (started at
random signs, so members differ from the first step), every layer after it is
shared and runs on [batch, k, width], and each supervised task has k heads.
The loss is the mean of the members' losses; the score is the mean of their
probabilities. A novelty head decodes the members' mean representation: its
score is a reconstruction error, which one decoder of one representation
keeps calibrated (k decoders would need k calibrations).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from jenga_edge.contract.errors import JengaError
from jenga_edge.contract.schema import FeatureSchema

from .config import ModelConfig
from .encodings import ENCODINGS, PeriodicOptions
from .task_kinds import TrainerKind, trainer_kind
from .text_backbones import PAD_ID, TextEncoder, text_ids

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}
LOG_EPS = 1e-12
MIN_LOG_WIDTH = 0.1  # log-error units: a CDF step spans at least 10 % of error (see cdf_bins)
FUSED_BINS = 128  # calibration bins of a fused task: a 1-3 % FPR threshold lies in its top few
P_FLOOR = 1e-4  # the smallest p-value a fused task's member gives


class UnsupportedInput(JengaError):
    """A batch holds an input this model has no backbone for (audio), or lacks one it needs."""


SUPPORTED_INPUTS = "`features` (tabular: numeric, categorical) and `input_ids`/`attention_mask` (text)"


def text_batch(text_bytes: torch.Tensor, lengths: torch.Tensor, trim: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch's stored text (uint8 [B, t, W], int64 [B, t]) -> (input_ids, attention_mask),
    trimmed to the batch's longest text: masked positions change no score (the agent trims
    the same way), and DNS names are mostly far shorter than max_bytes. At least one
    position stays, so an all-empty batch still has a bytes axis. trim=False keeps W (a
    compiled model wants one shape)."""
    if trim:
        width = max(1, int(lengths.max())) if lengths.numel() else 1
        text_bytes = text_bytes[..., :width]
    return text_ids(text_bytes, lengths)


def batch_inputs(
    num: torch.Tensor,
    cat: torch.Tensor,
    text: tuple[torch.Tensor, torch.Tensor] | None,
    rows: torch.Tensor,
    trim: bool = True,
) -> dict[str, Any]:
    """The forward's keyword inputs for `rows` of a source's stored arrays: `features`, and
    `input_ids`/`attention_mask` for a source with text (converted here, per batch)."""
    out: dict[str, Any] = {"features": {"numeric": num.index_select(0, rows), "categorical": cat.index_select(0, rows)}}
    if text is not None:
        data, lengths = text[0].index_select(0, rows), text[1].index_select(0, rows)
        out["input_ids"], out["attention_mask"] = text_batch(data, lengths, trim)
    return out


def auto_embedding_dim(schema: FeatureSchema) -> int:
    """fastai's rule of thumb on the largest vocabulary, kept small for edge latency."""
    sizes = [len(f.categories) for f in schema.categorical]
    return min(16, max(2, round(1.6 * max(sizes) ** 0.56))) if sizes else 0


class FeatureEncoder(nn.Module):
    """Raw (numeric float32 with NaN, categorical int64) -> encoded float vector.

    Missing numerics take their imputed value, then each numeric encoding
    (trainer/encodings.py) computes its columns, in registry order; categories
    are embedded.
    """

    # Buffers (register_buffer): declared so the checker sees tensors, not Tensor | Module.
    impute: torch.Tensor
    cat_offsets: torch.Tensor

    def __init__(self, schema: FeatureSchema, embedding_dim: int, periodic: PeriodicOptions | None = None):
        super().__init__()
        num = schema.numeric
        self.n_numeric, self.n_categorical = len(num), len(schema.categorical)
        self.register_buffer("impute", torch.tensor([f.impute for f in num], dtype=torch.float32))
        groups: dict[str, list[int]] = {}
        for j, f in enumerate(num):
            groups.setdefault(f.encoding, []).append(j)
        self.numeric_parts = nn.ModuleList(
            enc.module(groups[name], [num[j] for j in groups[name]], periodic)
            for name, enc in ENCODINGS.items()
            if name in groups
        )
        self.numeric_width = sum(ENCODINGS[f.encoding].width(f, periodic) for f in num)
        # A learned encoding's fixed view (reconstruction_target) is one column per feature.
        self.fixed_numeric_width = sum(
            1 if ENCODINGS[f.encoding].learned else ENCODINGS[f.encoding].width(f, periodic) for f in num
        )
        vocab = [len(f.categories) for f in schema.categorical]
        offsets = [sum(vocab[:i]) for i in range(len(vocab))]
        self.register_buffer("cat_offsets", torch.tensor(offsets, dtype=torch.long))
        self.embedding_dim = embedding_dim if vocab else 0
        self.embedding = nn.Embedding(sum(vocab), embedding_dim) if vocab else None
        self.vocab_total = sum(vocab)
        self.out_dim = self.numeric_width + self.n_categorical * self.embedding_dim

    def numeric_part(self, num: torch.Tensor) -> torch.Tensor:
        x = torch.where(torch.isnan(num), self.impute, num)
        parts = [part(x) for part in self.numeric_parts]
        if not parts:
            return num.new_zeros((num.shape[0], 0))
        return torch.cat(parts, dim=1)

    def forward(self, num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        parts = [self.numeric_part(num)]
        if self.embedding is not None:
            emb = self.embedding(cat + self.cat_offsets)
            parts.append(emb.reshape(cat.shape[0], -1))
        return torch.cat(parts, dim=1)

    def reconstruction_target(self, num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        """A fixed (not learned) view of the input for novelty autoencoders: the
        scaled numerics plus a one-hot of each category. Learned embeddings would
        let the autoencoder shrink them to zero and call everything normal; so
        would learned numeric encodings (`periodic`): they give their fixed input
        instead (`fixed_view`, the quantile rank)."""
        x = torch.where(torch.isnan(num), self.impute, num)
        fixed = [getattr(part, "fixed_view", part)(x) for part in self.numeric_parts]
        parts = [torch.cat(fixed, dim=1) if fixed else num.new_zeros((num.shape[0], 0))]
        if self.vocab_total:
            # Each feature's one-hot lives in its own offset range, so one multi-hot vector
            # of the combined vocabulary holds them all. A scatter, not rows of an identity
            # matrix summed: in the graph that GatherND + ReduceSum took 63 us at batch 256.
            hot = num.new_zeros((num.shape[0], self.vocab_total))
            parts.append(hot.scatter(1, cat + self.cat_offsets, 1.0))
        return torch.cat(parts, dim=1)

    @property
    def target_dim(self) -> int:
        return self.fixed_numeric_width + self.vocab_total


def mlp(sizes: list[int], cfg: ModelConfig, final_plain: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if final_plain and i == len(sizes) - 2:
            break
        if cfg.normalization == "layer":
            layers.append(nn.LayerNorm(b))
        elif cfg.normalization == "batch":
            layers.append(nn.BatchNorm1d(b))
        layers.append(ACTIVATIONS[cfg.activation]())
        if cfg.dropout:
            layers.append(nn.Dropout(cfg.dropout))
    return nn.Sequential(*layers)


def periodic_options(cfg: ModelConfig) -> PeriodicOptions:
    p = cfg.periodic
    return PeriodicOptions(frequencies=p.frequencies, width=p.width, sigma=p.sigma)


class Adapter(nn.Module):
    """Per-source front end, so sources with different schemas share one trunk.

    A schema with text features adds a TextEncoder (one byte backbone per text
    feature); its vector joins the tabular encoder's before the projection.
    With an ensemble (k > 1) it also holds the members' multiplicative adapters:
    [batch, D] encoded -> [batch, k, D], the only weights the members do not share
    besides their heads."""

    member_scale: torch.Tensor | None
    text: TextEncoder | None

    def __init__(self, schema: FeatureSchema, cfg: ModelConfig, width: int, embedding_dim: int):
        super().__init__()
        self.encoder = FeatureEncoder(schema, embedding_dim, periodic_options(cfg))
        # Built only for a schema with text: one without draws the same random numbers
        # as before text existed, so it is the same model bit for bit.
        self.text = None
        if schema.text:
            limits = [f.text_limit for f in schema.text]
            self.text = TextEncoder(limits, cfg.text.backbone, **cfg.text.options())
        in_dim = self.encoder.out_dim + (self.text.out_dim if self.text is not None else 0)
        self.project = nn.Sequential(nn.Linear(in_dim, width), ACTIVATIONS[cfg.activation]())
        # Created only for k > 1, after the other weights: a k = 1 model draws the same
        # random numbers as before ensembles existed, so it is the same model bit for bit.
        self.member_scale = None
        if cfg.ensemble > 1:
            signs = torch.randint(0, 2, (cfg.ensemble, in_dim)).float() * 2 - 1
            self.member_scale = nn.Parameter(signs)  # TabM-mini: random +-1 signs

    def forward(
        self,
        num: torch.Tensor,
        cat: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.encoder(num, cat)
        if self.text is not None:
            if input_ids is None:
                raise UnsupportedInput("this source has text features: its batches need input_ids (and attention_mask)")
            mask = attention_mask if attention_mask is not None else input_ids != PAD_ID
            x = torch.cat([x, self.text(input_ids, mask).to(x.dtype)], dim=1)
        elif input_ids is not None:
            raise UnsupportedInput("input_ids given for a source without text features (it reads `features` only)")
        if self.member_scale is not None:
            x = x.unsqueeze(1) * self.member_scale
        return self.project(x)


class EnsembleLinear(nn.Module):
    """k independent linear heads over [batch, k, in] -> [batch, k, out] (one batched MatMul)."""

    def __init__(self, in_dim: int, out_features: int, k: int):
        super().__init__()
        self.out_features = out_features  # as nn.Linear's, read by trainer/predict.py
        bound = 1.0 / in_dim**0.5  # nn.Linear's initialisation, per member
        self.weight = nn.Parameter(torch.empty(k, in_dim, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(k, out_features).uniform_(-bound, bound))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (h.transpose(0, 1) @ self.weight).transpose(0, 1) + self.bias


class SequentialBackbone(nn.Module):
    """The shared MLP trunk: hidden sizes, activation, normalization, dropout."""

    def __init__(self, in_dim: int, cfg: ModelConfig):
        super().__init__()
        self.net = mlp([in_dim, *cfg.hidden_sizes], cfg)
        self.out_dim = cfg.hidden_sizes[-1]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class LogCdfHead(nn.Module):
    """A head whose score is a positive value (an error, a distance) calibrated on normal
    validation rows into [0, 1] by their empirical CDF on the log scale (see cdf_bins)."""

    cal_left: torch.Tensor  # buffers (register_buffer)
    cal_width: torch.Tensor

    def __init__(self, calibration_bins: int = 64):
        super().__init__()
        self.register_buffer("cal_left", torch.zeros(calibration_bins + 1))
        self.register_buffer("cal_width", torch.ones(calibration_bins + 1))

    def calibrate(self, values: torch.Tensor) -> None:
        """Fit the CDF on normal rows' log values."""
        left, width = cdf_bins(torch.log(values.double().clamp_min(LOG_EPS)), self.cal_left.numel() - 1)
        self.cal_left.copy_(left)
        self.cal_width.copy_(width)

    def score(self, values: torch.Tensor) -> torch.Tensor:
        return cdf_value(torch.log(values.clamp_min(LOG_EPS)), self.cal_left, self.cal_width)


class NoveltyHead(LogCdfHead):
    """Autoencoder head; its score is the reconstruction error, calibrated on
    normal validation rows into [0, 1] by their empirical CDF (on log error)."""

    def __init__(self, in_dim: int, target_dim: int, cfg: ModelConfig, calibration_bins: int = 64):
        super().__init__(calibration_bins)
        self.decoder = mlp([in_dim, *cfg.decoder_sizes, target_dim], cfg, final_plain=True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(h)


def cdf_bins(z: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A smoothed empirical CDF of normal rows' values z: (left edges, widths) of `bins`
    quantile bins plus one extra bin above the largest, which keeps the scores of
    unusually high rows ordered instead of all equal to 1. float32, for the buffers."""
    z = z.double()
    # q on the same device as z: on CUDA a CPU q would be a device mismatch.
    edges = torch.quantile(z, torch.linspace(0, 1, bins + 1, dtype=torch.float64, device=z.device))
    edges = torch.cummax(edges, 0).values
    span = (edges[-1] - edges[0]).clamp_min(1e-6)
    edges = torch.cat([edges, edges[-1:] + span])
    # A bin at least MIN_LOG_WIDTH wide: when many normal rows share one error (identical
    # flows), their quantile edges coincide and a bin 1e-9 wide turns float32 rounding
    # between torch and onnxruntime into a score difference (export's parity check
    # caught 6.6e-4). k stacked bins of width w move the score by k/bins x rel_err / w:
    # with w = 0.1 and every bin stacked, 1e-6 of relative error stays under 1e-5.
    width = (edges[1:] - edges[:-1]).clamp_min(MIN_LOG_WIDTH)
    return edges[:-1].float(), width.float()


def cdf_value(z: torch.Tensor, left: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """The piecewise-linear CDF of cdf_bins at z ([...] with left/width [..., bins + 1])."""
    return ((z.unsqueeze(-1) - left) / width).clamp(0.0, 1.0).mean(dim=-1)


def cdf_tail(z: torch.Tensor, left: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """1 - cdf_value, computed as the upper tail itself: a small p-value keeps its
    relative precision in float32 instead of cancelling against 1."""
    return ((left + width - z.unsqueeze(-1)) / width).clamp(0.0, 1.0).mean(dim=-1)


class DistanceHead(LogCdfHead):
    """Mahalanobis distance of the shared trunk's output from the normal training rows
    (no parameters, no loss): rows unlike any normal one, of an attack type no label
    named, land far from them in the space the supervised heads shaped. Its score is
    the squared distance's CDF on normal validation rows, on log distance, like a
    novelty head's error."""

    mean: torch.Tensor  # buffers (register_buffer)
    whiten: torch.Tensor

    def __init__(self, in_dim: int, calibration_bins: int = 64):
        super().__init__(calibration_bins)
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("whiten", torch.eye(in_dim))

    def fit(self, h: torch.Tensor) -> None:
        """Mean and whitening of normal training rows' trunk outputs h [rows, d]: W with
        W W^T = (cov + ridge I)^-1, so |(h - mean) W|^2 is the Mahalanobis distance. The
        ridge (1e-3 of the mean variance) keeps a collapsed direction from dividing by 0."""
        x = h.double()
        mean = x.mean(dim=0)
        cov = torch.cov((x - mean).T).reshape(x.shape[1], x.shape[1])
        ridge = 1e-3 * cov.diagonal().mean().clamp_min(1e-12)
        precision = torch.linalg.inv(cov + ridge * torch.eye(x.shape[1], dtype=x.dtype, device=x.device))
        self.mean.copy_(mean.float())
        self.whiten.copy_(torch.linalg.cholesky(precision).float())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return ((h.float() - self.mean) @ self.whiten).pow(2).sum(dim=1)


class FusedHead(nn.Module):
    """One score from several binary heads of a source (no parameters, no loss).

    Each member's statistic (a supervised head's logit, a novelty head's log
    reconstruction error) becomes a p-value against normal validation rows
    (cdf_tail); the p-values combine by `combination` into one statistic, and
    that statistic's CDF on the same normal rows is the score: about uniform on
    normal rows, so a target_fpr threshold sits near 1 - target_fpr.
    """

    member_left: torch.Tensor  # buffers (register_buffer)
    member_width: torch.Tensor
    cal_left: torch.Tensor
    cal_width: torch.Tensor

    def __init__(self, members: int, combination: str, calibration_bins: int = FUSED_BINS):
        super().__init__()
        self.combination = combination
        self.register_buffer("member_left", torch.zeros(members, calibration_bins + 1))
        self.register_buffer("member_width", torch.ones(members, calibration_bins + 1))
        self.register_buffer("cal_left", torch.zeros(calibration_bins + 1))
        self.register_buffer("cal_width", torch.ones(calibration_bins + 1))

    def p_values(self, z: torch.Tensor) -> torch.Tensor:
        """[batch, members] statistics -> p-values in [P_FLOOR, 1 - P_FLOOR]: a row beyond
        every normal one gets P_FLOOR, not 0 (log 0 and tan(pi/2) are infinite)."""
        return cdf_tail(z, self.member_left, self.member_width).clamp(P_FLOOR, 1.0 - P_FLOOR)

    def statistic(self, z: torch.Tensor) -> torch.Tensor:
        """The combined statistic, larger = less normal (any monotone form will do: the
        score is its calibrated CDF)."""
        p = self.p_values(z)
        if self.combination == "fisher":
            return -torch.log(p).sum(dim=1)
        if self.combination == "min_p":
            return -torch.log(p.min(dim=1).values)
        # Cauchy combination (Liu & Xie 2020): robust to dependent members; asinh keeps
        # its heavy tail on a log-like scale for the calibration bins.
        return torch.asinh(torch.tan((0.5 - p) * math.pi).mean(dim=1))

    def calibrate(self, z: torch.Tensor, combined: torch.Tensor | None = None) -> None:
        """Fit each member's CDF on normal rows' statistics z [rows, members], then the
        combined statistic's CDF on `combined` (other normal rows) or on z itself."""
        bins = self.cal_left.numel() - 1
        for i in range(z.shape[1]):
            left, width = cdf_bins(z[:, i], bins)
            self.member_left[i].copy_(left)
            self.member_width[i].copy_(width)
        left, width = cdf_bins(self.statistic((z if combined is None else combined).float()), bins)
        self.cal_left.copy_(left)
        self.cal_width.copy_(width)

    def score(self, z: torch.Tensor) -> torch.Tensor:
        return cdf_value(self.statistic(z), self.cal_left, self.cal_width)


@dataclass(frozen=True)
class TaskSpec:
    """What the model needs to know about a task to build and run its head."""

    name: str
    type: str  # a task kind (trainer/task_kinds.py)
    mode: str  # supervised | novelty | distance | fused
    source: str
    n_classes: int
    members: tuple[str, ...] = ()  # fused: the tasks it combines
    combination: str = "fisher"  # fused: how their p-values combine

    @property
    def kind(self) -> TrainerKind:
        return trainer_kind(self.type)

    @property
    def binary(self) -> bool:
        return self.kind.binary


class MultiTaskModel(nn.Module):
    trunk: nn.Module  # SequentialBackbone (model.trunk: shared) or ModuleDict of them (per_source)

    def __init__(self, schemas: dict[str, FeatureSchema], tasks: list[TaskSpec], cfg: ModelConfig):
        super().__init__()
        self.cfg, self.specs = cfg, {t.name: t for t in tasks}
        width = cfg.adapter_dim or cfg.hidden_sizes[0]
        self.adapters = nn.ModuleDict(
            {name: Adapter(s, cfg, width, cfg.embedding_dim or auto_embedding_dim(s)) for name, s in schemas.items()}
        )
        if cfg.trunk == "per_source":
            self.trunk = nn.ModuleDict({name: SequentialBackbone(width, cfg) for name in schemas})
        else:
            self.trunk = SequentialBackbone(width, cfg)
        self.trunk_dim = cfg.hidden_sizes[-1]
        self.heads = nn.ModuleDict({t.name: self._head(t) for t in tasks})

    def _head(self, t: TaskSpec) -> nn.Module:
        if t.mode == "novelty":
            return NoveltyHead(self.trunk_dim, self._adapter(t.source).encoder.target_dim, self.cfg)
        if t.mode == "fused":
            return FusedHead(len(t.members), t.combination)
        if t.mode == "distance":
            return DistanceHead(self.trunk_dim)
        head = t.kind.head(self.trunk_dim, t.n_classes)
        if self.ensemble > 1:
            assert isinstance(head, nn.Linear)  # each kind's head is one linear layer
            return EnsembleLinear(head.in_features, head.out_features, self.ensemble)
        return head

    @property
    def ensemble(self) -> int:
        """Members per prediction (model.ensemble); the loss sees k logits per row."""
        return self.cfg.ensemble

    def _adapter(self, source: str) -> Adapter:
        # nn.ModuleDict is untyped (its items are nn.Module); this one holds Adapters only.
        return cast(Adapter, self.adapters[source])

    def novelty_head(self, task: str) -> NoveltyHead:
        # _head builds a NoveltyHead for every novelty task (ModuleDict items are typed nn.Module).
        return cast(NoveltyHead, self.heads[task])

    def distance_head(self, task: str) -> DistanceHead:
        # _head builds a DistanceHead for every distance task.
        return cast(DistanceHead, self.heads[task])

    def fused_head(self, task: str) -> FusedHead:
        # _head builds a FusedHead for every fused task.
        return cast(FusedHead, self.heads[task])

    def forward(
        self,
        task: str,
        labels: torch.Tensor | None = None,
        features: dict[str, torch.Tensor] | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        **batch: Any,
    ) -> dict[str, torch.Tensor]:
        """Dispatch on what the batch holds: tabular `features`, text `input_ids` /
        `attention_mask` (byte ids and mask, trainer/text_backbones.py), or both, as the
        task's source schema has them. `input_features` (audio) has no backbone here."""
        if input_features is not None:
            raise UnsupportedInput(f"input_features (audio) is not supported; this model reads {SUPPORTED_INPUTS}")
        if features is None and input_ids is None:
            got = sorted(["labels"] * (labels is not None) + list(batch))
            raise ValueError(
                f"batch for task {task!r} has none of the known input keys "
                f"(features, input_ids, attention_mask); got keys: {got}"
            )
        spec = self.specs.get(task)
        if spec is None:
            raise KeyError(f"unknown task {task!r}; this model has: {', '.join(self.specs)}")
        if features is None:  # a text-only batch: the tabular inputs are zero columns wide
            assert input_ids is not None  # checked above
            encoder = self._adapter(spec.source).encoder
            if encoder.n_numeric or encoder.n_categorical:
                raise UnsupportedInput(
                    f"source {spec.source!r} has tabular features: a batch for task {task!r} needs `features`"
                )
            num = torch.zeros((input_ids.shape[0], 0), dtype=torch.float32, device=input_ids.device)
            cat = torch.zeros((input_ids.shape[0], 0), dtype=torch.int64, device=input_ids.device)
        else:
            num, cat = features["numeric"], features["categorical"]
        h = self.shared(spec.source, num, cat, input_ids, attention_mask)
        out = self.head_outputs(task, h, num, cat)
        if labels is not None and spec.mode == "novelty":
            out["loss"] = out["errors"].mean()
        return out

    def shared(
        self,
        source: str,
        num: torch.Tensor,
        cat: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The source's adapter, then its trunk: computed once for all its tasks."""
        trunk = self.trunk[source] if isinstance(self.trunk, nn.ModuleDict) else self.trunk
        return trunk(self.adapters[source](num, cat, input_ids, attention_mask))

    def head_outputs(self, task: str, h: torch.Tensor, num: torch.Tensor, cat: torch.Tensor) -> dict[str, torch.Tensor]:
        spec, head = self.specs[task], self.heads[task]
        if spec.mode == "fused":
            # The members' heads on the same trunk output: the trunk still runs once.
            z = torch.stack([self.member_statistic(m, h, num, cat) for m in spec.members], dim=1)
            return {"members": z, "scores": self.fused_head(task).score(z)}
        if h.dim() == 3 and spec.mode in ("novelty", "distance"):
            h = h.mean(dim=1)  # [batch, k, width]: one representation, one calibrated decoder or distance
        if spec.mode == "distance":
            # "errors", as a novelty head's: a fused task reads both as a log distance.
            distances = self.distance_head(task)(h)
            return {"errors": distances, "scores": self.distance_head(task).score(distances)}
        if spec.mode == "novelty":
            novelty = self.novelty_head(task)
            target = self._adapter(spec.source).encoder.reconstruction_target(num, cat)
            errors = (novelty(h).float() - target.float()).pow(2).mean(dim=1)
            return {"errors": errors, "scores": novelty.score(errors)}
        if h.dim() == 3:
            return self._ensemble_outputs(spec, head(h).float())
        return spec.kind.scores(head(h).float())

    @staticmethod
    def _ensemble_outputs(spec: TaskSpec, member_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """[batch, k, out] -> `logits` of every member, flattened row-major to [batch * k, ...]
        (the trainer repeats each label k times), and `scores` the mean of the members'
        probabilities."""
        k, width = member_logits.shape[1], member_logits.shape[2]
        out = spec.kind.scores(member_logits.reshape(-1, width))
        scores = out["scores"]
        out["scores"] = scores.reshape(-1, k, *scores.shape[1:]).mean(dim=1)
        return out

    def member_statistic(self, task: str, h: torch.Tensor, num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        """What a fused task reads of a member: a supervised logit, or a novelty head's log
        error or a distance head's log distance, all unbounded, so the normal rows' tail keeps its resolution (a sigmoid
        score saturates at 1.0 in float32)."""
        out = self.head_outputs(task, h, num, cat)
        if "errors" in out:
            return torch.log(out["errors"].clamp_min(LOG_EPS))
        if h.dim() == 3:  # an ensemble: the members' logits [batch * k] -> their mean per row
            return out["logits"].reshape(h.shape[0], -1).mean(dim=1)
        return out["logits"]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def trunk_parameter_names(model: MultiTaskModel) -> set[str]:
    return {f"trunk.{n}" for n, _ in model.trunk.named_parameters()}
