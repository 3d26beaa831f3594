"""Byte-level text backbones: a text feature's bytes -> one vector, inside the graph.

A text feature reaches the network as `input_ids` int64 [batch, t, L] (byte + 1, 0 for
padding) and `attention_mask` bool [batch, t, L] (True on the text's bytes), built by
`text_ids` from the schema's inputs `text_bytes` uint8 and `text_lengths` int64
(contract/schema.py). The trainer's batches and the exported graph both call
`text_ids`, so there is no tokenizer outside the graph and none to drift.

Backbones (chosen per experiment, `model.text.backbone`):

* ``cnn`` (the default, tuned for DGA names in bench/dga_study.py): byte n-gram
  detectors (a convolution over byte embeddings, computed as table look-ups), ReLU,
  max- and mean-pooled over the text's positions. Cheap at the edge: its cost is linear
  in L, with no Conv, transpose or mask pass in the graph.
* ``transformer``: byte embeddings plus learned positions, a few pre-norm
  self-attention layers over the text's bytes (padding masked out), mean-pooled.

Each text feature has its own backbone; `TextEncoder` concatenates their vectors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

PAD_ID = 0
VOCAB = 257  # 256 byte values + padding


def text_ids(text_bytes: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 [B, t, L], int64 [B, t]) -> (input_ids int64 [B, t, L], attention_mask bool [B, t, L])."""
    positions = torch.arange(text_bytes.shape[-1], device=text_bytes.device)
    mask = positions < lengths.unsqueeze(-1)
    ids = (text_bytes.to(torch.int64) + 1) * mask.to(torch.int64)
    return ids, mask


class ByteCNN(nn.Module):
    """Byte n-gram detectors (a convolution over one-hot bytes) -> ReLU -> masked max pool
    (and, with ``pool: maxmean``, the masked mean too).

    A convolution of width w over byte embeddings is linear in the w bytes of its window,
    so it is a sum of w table look-ups: ``h[t] = b + sum_j T_j[id[t + j - left]]``, each
    ``T_j`` a [257, channels] table (``T_j = E @ W_j`` when ``embedding_dim`` is given: a
    byte embedding shared by the window's positions, the usual Embedding + Conv1d; without
    it each position has its own free table). Look-ups and adds instead of a Conv: no
    im2col, no transposes, channels last; ~2x the speed of Embedding + Conv1d in onnxruntime.

    Padding costs nothing: the window's anchor table maps the padding id to a large
    negative constant, so a position past the text's end never wins the max and is 0
    after the ReLU (the mean's sum), and a neighbour that is padding adds 0 (a 'same'
    convolution's zero padding). A text therefore scores the same in a batch padded to
    max_bytes as in one trimmed to its longest text; an empty text pools to zeros.
    """

    def __init__(
        self,
        max_bytes: int,
        channels: int = 32,
        widths: Sequence[int] = (3,),
        embedding_dim: int | None = 32,
        pool: str = "maxmean",
    ):
        super().__init__()
        if pool not in ("max", "maxmean"):
            raise ValueError(f"model.text.pool {pool!r}: expected max or maxmean")
        self.widths = tuple(int(w) for w in widths)
        self.channels = channels
        rows = VOCAB if embedding_dim is None else int(embedding_dim)
        # One [rows, channels] weight per window position, for each width; biases per width.
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(w, rows, channels) * (1.0 / math.sqrt(w * rows if embedding_dim else w)))
            for w in self.widths
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(channels)) for _ in self.widths)
        self.embedding = None if embedding_dim is None else nn.Embedding(VOCAB, int(embedding_dim), padding_idx=PAD_ID)
        self.pool = pool
        self.out_dim = channels * len(self.widths) * (2 if pool == "maxmean" else 1)

    def _tables(self, k: int) -> list[torch.Tensor]:
        """Width k's per-position [257, channels] tables, padding rows set (see the class)."""
        w = self.widths[k]
        left = (w - 1) // 2
        out = []
        for j in range(w):
            t = self.weights[k][j] if self.embedding is None else self.embedding.weight @ self.weights[k][j]
            if j == left:
                t = t + self.biases[k]
            pad = torch.full_like(t[:1], -1e4 if j == left else 0.0)
            out.append(torch.cat([pad, t[1:]], dim=0))
        return out

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n = ids.shape[1]
        pooled_max, pooled_mean = [], []
        count = mask.sum(dim=1, keepdim=True).clamp(min=1).to(torch.float32)
        for k, w in enumerate(self.widths):
            left = (w - 1) // 2
            padded = nn.functional.pad(ids, (left, w - 1 - left))  # id 0: padding
            h = None
            for j, table in enumerate(self._tables(k)):
                part = nn.functional.embedding(padded[:, j : j + n], table)
                h = part if h is None else h + part
            assert h is not None
            pooled_max.append(torch.relu(h.amax(dim=1)))  # relu(max) == max(relu)
            if self.pool == "maxmean":
                pooled_mean.append(torch.relu(h).sum(dim=1) / count)
        return torch.cat(pooled_max + pooled_mean, dim=1)


class ByteTransformer(nn.Module):
    """Embeddings + learned positions -> pre-norm attention blocks (padding masked) -> masked mean."""

    def __init__(self, max_bytes: int, d_model: int = 32, heads: int = 2, layers: int = 2, ff: int = 64):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"model.text.d_model {d_model} must be a multiple of heads {heads}")
        self.embedding = nn.Embedding(VOCAB, d_model, padding_idx=PAD_ID)
        self.position = nn.Parameter(torch.randn(max_bytes, d_model) * 0.02)
        self.blocks = nn.ModuleList(_Block(d_model, heads, ff) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.out_dim = d_model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids) + self.position[: ids.shape[1]]
        # A key that is padding gets -inf; an empty text keeps one finite key (position 0)
        # so softmax stays defined; its pooled vector is zeroed by the mask below anyway.
        attend = mask.clone()
        attend[:, 0] = True
        bias = torch.zeros(attend.shape, dtype=x.dtype, device=x.device).masked_fill(~attend, float("-inf"))
        for block in self.blocks:
            x = block(x, bias[:, None, None, :])
        x = self.norm(x)
        weights = mask.to(x.dtype).unsqueeze(-1)
        return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class _Block(nn.Module):
    def __init__(self, d_model: int, heads: int, ff: int):
        super().__init__()
        self.heads, self.head_dim = heads, d_model // heads
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff), nn.GELU(), nn.Linear(ff, d_model))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim) + bias
        y = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.proj(y)
        return x + self.ff(self.norm2(x))


BACKBONES: dict[str, type[nn.Module]] = {"cnn": ByteCNN, "transformer": ByteTransformer}


class TextEncoder(nn.Module):
    """One backbone per text feature; their vectors concatenated, in schema order."""

    def __init__(self, max_bytes: Sequence[int], backbone: str = "cnn", **options: object):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"model.text.backbone {backbone!r}: expected one of {', '.join(BACKBONES)}")
        made = [BACKBONES[backbone](m, **options) for m in max_bytes]
        self.backbones = nn.ModuleList(made)
        self.out_dim: int = sum(int(getattr(b, "out_dim")) for b in made)  # noqa: B009 - set by every backbone

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        parts = [b(input_ids[:, j], attention_mask[:, j]) for j, b in enumerate(self.backbones)]
        return torch.cat(parts, dim=1)
