"""Byte-level text backbones: a text feature's bytes -> one vector, inside the graph.

A text feature reaches the network as `input_ids` int64 [batch, t, L] (byte + 1, 0 for
padding) and `attention_mask` bool [batch, t, L] (True on the text's bytes), built by
`text_ids` from the schema's inputs `text_bytes` uint8 and `text_lengths` int64
(contract/schema.py). The trainer's batches and the exported graph both call
`text_ids`, so there is no tokenizer outside the graph and none to drift.

Backbones (chosen per experiment, `model.text.backbone`):

* ``cnn``: byte embeddings, convolutions of several widths (character n-grams of
  those lengths, learned), ReLU, max-pooled over the text's positions. Cheap at the
  edge: its cost is linear in L and the pooling is one reduction.
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
    """Embeddings -> parallel Conv1d of `widths` ('same' length) -> ReLU -> masked max pool."""

    def __init__(
        self, max_bytes: int, embedding_dim: int = 16, channels: int = 32, widths: Sequence[int] = (2, 3, 4, 5)
    ):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, embedding_dim, padding_idx=PAD_ID)
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, channels, w, padding="same") for w in widths)
        self.out_dim = channels * len(widths)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids).transpose(1, 2)  # [B, E, L]
        keep = mask.unsqueeze(1)  # [B, 1, L]
        # ReLU outputs are >= 0, so zeroing the padded positions leaves the max of the
        # text's own positions, and an empty text pools to zeros (never -inf).
        pooled = [(torch.relu(conv(x)) * keep).amax(dim=2) for conv in self.convs]
        return torch.cat(pooled, dim=1)


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
