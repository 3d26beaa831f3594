"""DGA detector model study (issue 13): which byte-level text model, trained how.

Every candidate is the network the trainer builds for a text task: `TextEncoder`
(trainer/text_backbones.py) -> trunk MLP (Linear, LayerNorm, activation, dropout) ->
a binary head (sigmoid), optionally a second head for the DGA family (multitask).
A plain torch loop mirrors the trainer's (AdamW with weight decay on weights only,
linear warm-up then cosine decay, gradient clipping, balanced class weights, batches
trimmed to their longest name).

Tuning is only on family-grouped folds of train.jsonl, the protocol of
bench/dga_compare.py (its `unseen_splits`: DGA families split into seeded folds by
trainer/holdout.py's make_folds; each fold's families are removed from training and
scored against a fixed seeded 20 % of the benign names that no fold trains on). The
baseline (char 1-3-gram TF-IDF + logistic regression) runs on the same folds, in the
same run. `--final` scores test_seen.jsonl once with the chosen recipe, for reporting.

Speed is the exported graph's: torch.onnx.export (dynamo, opset 18) with a dynamic
batch and bytes axis, timed in onnxruntime with one intra-op thread on 1024-name
batches of training names trimmed to their longest name; the graph's size in bytes is
the model size. The same run checks that a name scores the same padded to max_bytes
as trimmed.

    python bench/dga_study.py --speed-only --candidates c32,recommended,transformer
    python bench/dga_study.py --candidates c32-mm,c32x2-mm --folds 2 --train-rows 60000 --epochs 8
    python bench/dga_study.py --candidates recommended --tld both --baseline     # 4 folds, all rows
    python bench/dga_study.py --candidates recommended --tld both --final --folds 0   # test_seen, once
    python bench/dga_study.py --protocol seen --folds 2 --candidates recommended,c64x4-mm   # seen families

`--protocol seen` tunes for test_seen's protocol without opening it: seeded random splits
of train.jsonl that hold out 20 % of every family and of the benign names; each fold also
reports every family's recall at 1 % FPR (the JSON's `family_recall`: family index in
sorted order -> [names, recall]).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detection_compare import detection_metrics
from dga_compare import baseline_fit_score, read_names, unseen_splits, without_tld

from jenga_edge.contract.schema import Feature
from jenga_edge.contract.text_input import encode_text

REPO = Path(__file__).resolve().parents[1]
DGA = REPO.parent / "shared/datasets/dga"


@dataclass(frozen=True)
class Recipe:
    """One candidate: the text backbone, the trunk and how it is trained."""

    backbone: str = "cnn"
    options: dict = field(default_factory=dict)
    hidden: tuple[int, ...] = (64,)
    epochs: int = 4
    lr: float = 3e-3
    batch_size: int = 512
    weight_decay: float = 1e-4
    dropout: float = 0.1
    family_head: float = 0.0  # weight of the DGA-family loss (0: no family head)
    max_bytes: int = 64
    label_smoothing: float = 0.0  # binary targets pulled toward 0.5 by this much
    ensemble: int = 1  # k > 1: TabM-mini members (model.ensemble): per-member signs, k heads, mean of probabilities
    balanced: bool = True  # balanced class weights (the trainer's class_weighting default)
    tld_swap: float = 0.0  # per training row and step, the chance its TLD is replaced by a benign one


CANDIDATES: dict[str, Recipe] = {
    # The recommendation (trainer/text_backbones.py's ByteCNN defaults), 6 epochs on all rows.
    "recommended": Recipe(options={"channels": 32, "widths": (3,), "pool": "maxmean", "embedding_dim": 32}, epochs=6),
    # The first choice, scored on test_seen (embedding 16; the same graph cost).
    "c32-mm-e16": Recipe(options={"channels": 32, "widths": (3,), "pool": "maxmean", "embedding_dim": 16}, epochs=6),
    "c32": Recipe(options={"channels": 32, "embedding_dim": 16, "widths": (3,), "pool": "max"}),
    "c48": Recipe(options={"channels": 48, "embedding_dim": 16, "widths": (3,), "pool": "max"}),
    "c64": Recipe(options={"channels": 64, "embedding_dim": 16, "widths": (3,), "pool": "max"}),
    "c32-mm": Recipe(options={"channels": 32, "widths": (3,), "pool": "maxmean", "embedding_dim": 16}),
    "c32-free": Recipe(options={"channels": 32, "widths": (3,), "embedding_dim": None, "pool": "max"}),
    "c32-w4": Recipe(options={"channels": 32, "embedding_dim": 16, "widths": (4,), "pool": "max"}),
    "c16x2": Recipe(options={"channels": 16, "embedding_dim": 16, "widths": (2, 4), "pool": "max"}),
    "c32x2": Recipe(options={"channels": 32, "embedding_dim": 16, "widths": (2, 4), "pool": "max"}),
    "c32x2-mm": Recipe(options={"channels": 32, "embedding_dim": 16, "widths": (2, 4), "pool": "maxmean"}),
    "c24x2-mm": Recipe(options={"channels": 24, "embedding_dim": 16, "widths": (2, 4), "pool": "maxmean"}),
    "c16x2-mm": Recipe(options={"channels": 16, "embedding_dim": 16, "widths": (2, 4), "pool": "maxmean"}),
    "c32-w4-mm": Recipe(options={"channels": 32, "embedding_dim": 16, "widths": (4,), "pool": "maxmean"}),
    "c32-mm-reg": Recipe(
        options={"channels": 32, "embedding_dim": 16, "widths": (3,), "pool": "maxmean"}, dropout=0.3, weight_decay=1e-2
    ),
    "c32-mm-e32": Recipe(options={"channels": 32, "widths": (3,), "pool": "maxmean", "embedding_dim": 32}),
    "c32-fam": Recipe(options={"channels": 32, "embedding_dim": 16, "widths": (3,), "pool": "max"}, family_head=0.3),
    "c32-h128": Recipe(options={"channels": 32, "embedding_dim": 16, "widths": (3,), "pool": "max"}, hidden=(128, 64)),
    "transformer": Recipe(backbone="transformer", options={"d_model": 32, "heads": 2, "layers": 2, "ff": 64}),
    # Issue 13's second round (2026-12-02): wider and multi-width CNNs, a deeper trunk, longer training.
    "c48-mm": Recipe(options={"channels": 48, "widths": (3,), "pool": "maxmean", "embedding_dim": 32}, epochs=6),
    "c64-mm": Recipe(options={"channels": 64, "widths": (3,), "pool": "maxmean", "embedding_dim": 32}, epochs=6),
    "c16x4-mm": Recipe(
        options={"channels": 16, "widths": (2, 3, 4, 5), "pool": "maxmean", "embedding_dim": 32}, epochs=6
    ),
    "c24x3-mm": Recipe(options={"channels": 24, "widths": (2, 3, 4), "pool": "maxmean", "embedding_dim": 32}, epochs=6),
    "c32x4-mm": Recipe(
        options={"channels": 32, "widths": (2, 3, 4, 5), "pool": "maxmean", "embedding_dim": 32}, epochs=6
    ),
    "c64x4-mm": Recipe(
        options={"channels": 64, "widths": (2, 3, 4, 5), "pool": "maxmean", "embedding_dim": 32}, epochs=6
    ),
    "c32-w5-mm": Recipe(options={"channels": 32, "widths": (5,), "pool": "maxmean", "embedding_dim": 32}, epochs=6),
    "rec-e64": Recipe(options={"channels": 32, "widths": (3,), "pool": "maxmean", "embedding_dim": 64}, epochs=6),
    "rec-h128": Recipe(
        options={"channels": 32, "widths": (3,), "pool": "maxmean", "embedding_dim": 32}, hidden=(128, 64), epochs=6
    ),
    "rec-ep12": Recipe(options={"channels": 32, "widths": (3,), "pool": "maxmean", "embedding_dim": 32}, epochs=12),
    "rec-do3": Recipe(
        options={"channels": 32, "widths": (3,), "pool": "maxmean", "embedding_dim": 32}, dropout=0.3, epochs=6
    ),
    "rec-ls": Recipe(
        options={"channels": 32, "widths": (3,), "pool": "maxmean", "embedding_dim": 32}, label_smoothing=0.1, epochs=6
    ),
    "rec-k4": Recipe(
        options={"channels": 32, "widths": (3,), "pool": "maxmean", "embedding_dim": 32}, ensemble=4, epochs=6
    ),
    "rec-unbal": Recipe(
        options={"channels": 32, "widths": (3,), "pool": "maxmean", "embedding_dim": 32}, balanced=False, epochs=6
    ),
    "rec-swap3": Recipe(
        options={"channels": 32, "widths": (3,), "pool": "maxmean", "embedding_dim": 32}, tld_swap=0.3, epochs=6
    ),
    "rec-swap6": Recipe(
        options={"channels": 32, "widths": (3,), "pool": "maxmean", "embedding_dim": 32}, tld_swap=0.6, epochs=6
    ),
    "c32-free-mm": Recipe(options={"channels": 32, "widths": (3,), "pool": "maxmean", "embedding_dim": None}, epochs=6),
    "transformer-d16": Recipe(backbone="transformer", options={"d_model": 16, "heads": 2, "layers": 1, "ff": 32}),
    # Issue 13's third round (seen protocol): how far capacity alone goes, speed aside.
    "c128x4-mm-h128": Recipe(
        options={"channels": 128, "widths": (2, 3, 4, 5), "pool": "maxmean", "embedding_dim": 32},
        hidden=(128,),
        epochs=8,
    ),
}


# ------------------------------------------------------------------ pure helpers


def encode_names(names: list[str], max_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, max_bytes] zero-padded bytes and int64 [N] lengths, by the schema's text
    rule (contract/text_input.py) for examples/configs/dga.yaml's `domain`: normalize dns,
    truncate tail (a longer name keeps its last max_bytes bytes, the TLD's side)."""
    feature = Feature("domain", "text", max_bytes=max_bytes, normalize="dns", truncate="tail")
    out = np.zeros((len(names), max_bytes), dtype=np.uint8)
    lengths = np.zeros(len(names), dtype=np.int64)
    for i, name in enumerate(names):
        raw = encode_text(name, feature)
        out[i, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
        lengths[i] = len(raw)
    return out, lengths


def swap_tlds(names: list[str], y: np.ndarray, seed: int) -> list[str]:
    """Each name with its TLD replaced by one drawn from the benign names' TLDs (their
    frequencies), so a swapped row's TLD says nothing about its label (recipe.tld_swap)."""
    rng = np.random.default_rng(seed)
    tlds = [n.rstrip(".").rpartition(".")[2] for n, t in zip(names, y.tolist()) if t == 0]
    drawn = rng.choice(np.asarray(tlds, dtype=object), len(names)) if tlds else ["com"] * len(names)
    return [f"{without_tld(n)}.{t}" for n, t in zip(names, drawn)]


def trimmed_batches(lengths: np.ndarray, batch: int) -> list[tuple[int, int, int]]:
    """(start, stop, L) per batch of consecutive rows, L its longest length (at least 1)."""
    return [
        (s, min(s + batch, len(lengths)), max(1, int(lengths[s : s + batch].max())))
        for s in range(0, len(lengths), batch)
    ]


def lr_at(step: int, total: int, peak: float, warmup_fraction: float = 0.05) -> float:
    """The trainer's schedule (trainer/train.py lr_at) at its default 5 % warm-up."""
    from trainer.train import lr_at as trainer_lr_at

    return trainer_lr_at(step, total, peak, warmup_fraction)


def summarize(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0}


# ------------------------------------------------------------------ the network


def build(recipe: Recipe, n_families: int):
    import torch
    from torch import nn

    from trainer.text_backbones import TextEncoder, text_ids

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = TextEncoder([recipe.max_bytes], recipe.backbone, **recipe.options)
            layers: list[nn.Module] = []
            width = self.encoder.out_dim
            for h in recipe.hidden:
                layers += [nn.Linear(width, h), nn.LayerNorm(h), nn.ReLU(), nn.Dropout(recipe.dropout)]
                width = h
            self.trunk = nn.Sequential(*layers)
            k = recipe.ensemble
            self.head = nn.Linear(width, k)  # one logit per member (k = 1: the plain head)
            self.family = nn.Linear(width, n_families) if recipe.family_head > 0 else None
            # TabM-mini (trainer/model.py's model.ensemble): random +-1 scales of the encoded
            # vector per member; the trunk is shared and member j reads its own head's logit j.
            signs = torch.randint(0, 2, (k, self.encoder.out_dim)).float() * 2 - 1 if k > 1 else None
            self.member_scale = nn.Parameter(signs) if signs is not None else None

        def features(self, text_bytes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            """[B, width], or [B, k, width] for an ensemble."""
            ids, mask = text_ids(text_bytes, lengths)
            x = self.encoder(ids, mask)
            if self.member_scale is not None:
                x = x.unsqueeze(1) * self.member_scale
            return self.trunk(x)

        def logits(self, h: torch.Tensor) -> torch.Tensor:
            """[B, k] member logits (k = 1 for a plain network)."""
            out = self.head(h)
            return out.diagonal(dim1=1, dim2=2) if h.dim() == 3 else out

        def forward(self, text_bytes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            """The exported graph: the DGA score in [0, 1] (an ensemble's: the members' mean)."""
            return torch.sigmoid(self.logits(self.features(text_bytes, lengths))).mean(dim=1)

    return Net()


def train(
    recipe: Recipe,
    x: np.ndarray,
    lengths: np.ndarray,
    y: np.ndarray,
    fam: np.ndarray,
    seed: int,
    swapped: tuple[np.ndarray, np.ndarray] | None = None,
):
    """A fitted network (eval mode). `fam`: family index per row, -1 for benign; `swapped`:
    the rows' bytes and lengths with their TLD replaced (recipe.tld_swap), if it is used."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_fam = int(fam.max()) + 1 if fam.size and fam.max() >= 0 else 1
    net = build(recipe, n_fam)
    decay = [p for n, p in net.named_parameters() if p.ndim > 1 and "embedding" not in n]
    rest = [p for n, p in net.named_parameters() if not (p.ndim > 1 and "embedding" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": rest, "weight_decay": 0.0}], lr=recipe.lr
    )
    counts = np.bincount(y, minlength=2).astype(np.float64)
    class_w = torch.tensor(counts.sum() / (2 * np.maximum(counts, 1)), dtype=torch.float32)
    if not recipe.balanced:
        class_w = torch.ones(2)
    xt, lt = torch.from_numpy(x), torch.from_numpy(lengths)
    sx, sl = (torch.from_numpy(swapped[0]), torch.from_numpy(swapped[1])) if swapped is not None else (xt, lt)
    yt, ft = torch.from_numpy(y.astype(np.float32)), torch.from_numpy(fam)
    steps = math.ceil(len(y) / recipe.batch_size)
    total, step = recipe.epochs * steps, 0
    net.train()
    for _ in range(recipe.epochs):
        order = torch.from_numpy(rng.permutation(len(y)))
        for s in range(steps):
            idx = order[s * recipe.batch_size : (s + 1) * recipe.batch_size]
            xb, li = xt[idx], lt[idx]
            if recipe.tld_swap > 0:
                swap = torch.from_numpy(rng.random(len(idx)) < recipe.tld_swap)
                xb = torch.where(swap[:, None], sx[idx], xb)
                li = torch.where(swap, sl[idx], li)
            xb = xb[:, : int(li.max().clamp(min=1))].unsqueeze(1)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, recipe.lr)
            h = net.features(xb, li.unsqueeze(1))
            logit = net.logits(h)  # [B, k]
            yb = yt[idx]
            target = yb * (1 - recipe.label_smoothing) + 0.5 * recipe.label_smoothing
            k = logit.shape[1]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logit, target[:, None].expand(-1, k), weight=class_w[yb.long()][:, None].expand(-1, k)
            )
            if net.family is not None:
                h = h.mean(dim=1) if h.dim() == 3 else h
                fb = ft[idx]
                dga = fb >= 0
                if bool(dga.any()):
                    loss = loss + recipe.family_head * torch.nn.functional.cross_entropy(net.family(h[dga]), fb[dga])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            step += 1
    return net.eval()


def score(net, x: np.ndarray, lengths: np.ndarray, batch: int = 4096) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for s, e, L in trimmed_batches(lengths, batch):
            out.append(net(torch.from_numpy(x[s:e, :L]).unsqueeze(1), torch.from_numpy(lengths[s:e]).unsqueeze(1)))
    return torch.cat(out).numpy()


# ------------------------------------------------------------------ export and speed


def export(net, path: Path, max_bytes: int) -> None:
    import torch

    batch, nbytes = torch.export.Dim("batch", min=1), torch.export.Dim("bytes", min=1, max=max_bytes)
    example = (torch.zeros(4, 1, max_bytes, dtype=torch.uint8), torch.full((4, 1), 3, dtype=torch.int64))
    torch.onnx.export(
        net,
        example,
        str(path),
        dynamo=True,
        opset_version=18,
        input_names=["text_bytes", "text_lengths"],
        output_names=["score"],
        dynamic_shapes=({0: batch, 2: nbytes}, {0: batch}),
        external_data=False,
        verbose=False,
    )


def ort_speed(path: Path, x: np.ndarray, lengths: np.ndarray, batches: int = 40, batch: int = 1024) -> dict:
    """Names/s of the graph in onnxruntime, one intra-op thread, 1024-name batches trimmed
    to their longest name; also the parity of padded vs trimmed scores."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    plan = trimmed_batches(lengths[: batches * batch], batch)
    feeds = [{"text_bytes": x[s:e, None, :L].copy(), "text_lengths": lengths[s:e, None].copy()} for s, e, L in plan]
    sess.run(None, feeds[0])  # warm-up
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        for f in feeds:
            sess.run(None, f)
        best = min(best, time.perf_counter() - t0)
    n = sum(e - s for s, e, _ in plan)
    s0, e0, _ = plan[0]
    trimmed = sess.run(None, feeds[0])[0]
    padded = sess.run(None, {"text_bytes": x[s0:e0, None, :].copy(), "text_lengths": lengths[s0:e0, None].copy()})[0]
    return {
        "names_per_s": n / best,
        "mean_trimmed_bytes": float(np.mean([L for _, _, L in plan])),
        "parity_max_abs_diff": float(np.max(np.abs(trimmed - padded))),
        "graph_bytes": path.stat().st_size,
    }


def speed_and_size(net, x: np.ndarray, lengths: np.ndarray, max_bytes: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dga.onnx"
        export(net, path, max_bytes)
        return ort_speed(path, x, lengths)


# ------------------------------------------------------------------ the study


def seen_splits(fam: np.ndarray, n: int, seed: int, share: float = 0.2) -> list[tuple]:
    """n seeded random splits of train.jsonl, each holding out `share` of every family and of
    the benign names (a family of one name stays in training): test_seen's protocol (every
    family seen in training) on our own rows, so test_seen.jsonl is never tuned on."""
    out = []
    for k in range(n):
        rng = np.random.default_rng(seed * 1000 + k)
        test = []
        for f in np.unique(fam):
            rows = rng.permutation(np.flatnonzero(fam == f))
            test.append(rows[: int(len(rows) * share)])
        te = np.sort(np.concatenate(test))
        tr = np.setdiff1d(np.arange(len(fam)), te)
        out.append((tr, te, [f"random {share:.0%} of every family"]))
    return out


def fold_data(names, y, families, args):
    """Per fold: (train idx, test idx, held families), training rows subsampled (seeded)."""
    rng = np.random.default_rng(args.seed + 1)
    out = []
    if args.protocol == "seen":
        fam_ids = {f: i for i, f in enumerate(sorted({f for f in families if f is not None}))}
        codes = np.asarray([fam_ids[f] if f is not None else -1 for f in families])
        splits = seen_splits(codes, args.folds, args.seed)
    else:
        splits = unseen_splits(families, args.folds_of, args.seed)[: args.folds]
    for tr, te, held in splits:
        if args.train_rows and len(tr) > args.train_rows:
            tr = np.sort(rng.choice(tr, args.train_rows, replace=False))
        out.append((tr, te, held))
    return out


def run_candidate(name: str, recipe: Recipe, data: dict, splits, args, tld: bool) -> dict:
    x, lengths = data["tld" if tld else "notld"]
    y, fam = data["y"], data["fam"]
    rows = []
    for k, (tr, te, held) in enumerate(splits, 1):
        t0 = time.perf_counter()
        fam_tr = remap(fam[tr])
        swapped = None
        if recipe.tld_swap > 0:
            view = (lambda n: n) if tld else without_tld
            swapped = encode_names(
                swap_tlds([view(data["names"][i]) for i in tr], y[tr], args.seed + k), recipe.max_bytes
            )
        net = train(recipe, x[tr], lengths[tr], y[tr], fam_tr, args.seed + k, swapped)
        fit_s = time.perf_counter() - t0
        scores = score(net, x[te], lengths[te])
        m = detection_metrics(y[te], scores)
        rows.append(
            {"fold": k, "held_out": held, "fit_s": fit_s, **m, "family_recall": family_recall(y[te], fam[te], scores)}
        )
        print(
            f"  {name} fold {k} ({'with' if tld else 'without'} TLD): recall@1%FPR {m['recall_at_1pct_fpr']:.4f} "
            f"ROC-AUC {m['roc_auc']:.4f} ({fit_s:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    out = {"candidate": name, "tld": tld, "recipe": asdict(recipe), "folds": rows}
    out["params"] = int(sum(p.numel() for p in net.parameters()))
    return out


def family_recall(y: np.ndarray, fam: np.ndarray, scores: np.ndarray) -> dict[int, list]:
    """Per DGA family of the test rows: [names, recall] at the threshold that flags 1 % of
    the benign test names (where a detector's misses are)."""
    thr = float(np.quantile(scores[y == 0], 0.99))
    return {
        int(f): [int((fam == f).sum()), round(float((scores[fam == f] > thr).mean()), 4)]
        for f in np.unique(fam[y == 1])
    }


def remap(fam: np.ndarray) -> np.ndarray:
    """Family indices of a training set made dense (0..k-1), benign stays -1."""
    known = np.unique(fam[fam >= 0])
    lookup = {int(f): i for i, f in enumerate(known)}
    return np.asarray([lookup.get(int(f), -1) for f in fam], dtype=np.int64)


def baseline_rows(names, y, splits, tld: bool) -> dict:
    view = (lambda n: n) if tld else without_tld
    rows = []
    for k, (tr, te, held) in enumerate(splits, 1):
        scores, fit_s = baseline_fit_score([view(names[i]) for i in tr], y[tr], [view(names[i]) for i in te])
        rows.append({"fold": k, "held_out": held, "fit_s": fit_s, **detection_metrics(y[te], scores)})
        print(f"  baseline fold {k}: recall@1%FPR {rows[-1]['recall_at_1pct_fpr']:.4f}", file=sys.stderr, flush=True)
    return {"candidate": "tfidf-lr (baseline)", "tld": tld, "folds": rows}


def final_test(recipe: Recipe, names, y, fam, tnames, ty, args, tld: bool) -> dict:
    """The chosen recipe trained on all of train.jsonl, scored on test_seen.jsonl once."""
    view = (lambda n: n) if tld else without_tld
    x, lengths = encode_names([view(n) for n in names], recipe.max_bytes)
    tx, tl = encode_names([view(n) for n in tnames], recipe.max_bytes)
    swapped = None
    if recipe.tld_swap > 0:
        swapped = encode_names(swap_tlds([view(n) for n in names], y, args.seed), recipe.max_bytes)
    net = train(recipe, x, lengths, y, remap(fam), args.seed, swapped)
    m = detection_metrics(ty, score(net, tx, tl))
    base, _ = baseline_fit_score([view(n) for n in names], y, [view(n) for n in tnames])
    return {"tld": tld, "model": m, "baseline": detection_metrics(ty, base)}


def table(results: list[dict]) -> str:
    out = [
        "| candidate | TLD | folds | recall at 1 % FPR | ROC-AUC | per-fold recall at 1 % FPR"
        " | names/s (ORT, 1 thread) | graph bytes |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in results:
        if not r["folds"]:
            sp = r.get("speed")
            if not sp:
                continue
            out.append(f"| {r['candidate']} | - | 0 | - | - | - | {sp['names_per_s']:,.0f} | {sp['graph_bytes']:,} |")
            continue
        rec = summarize([f["recall_at_1pct_fpr"] for f in r["folds"]])
        auc = summarize([f["roc_auc"] for f in r["folds"]])
        per = " ".join(f"{f['recall_at_1pct_fpr']:.3f}" for f in r["folds"])
        sp = r.get("speed", {})
        nps = f"{sp['names_per_s']:,.0f}" if sp else "-"
        size = f"{sp['graph_bytes']:,}" if sp else "-"
        out.append(
            f"| {r['candidate']} | {'with' if r['tld'] else 'without'} | {len(r['folds'])} | "
            f"{rec['mean']:.4f} ± {rec['std']:.4f} | {auc['mean']:.4f} ± {auc['std']:.4f} | {per} | {nps} | {size} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", default="cnn32", help=f"comma-separated, of: {', '.join(CANDIDATES)}")
    ap.add_argument("--data", type=Path, default=DGA)
    ap.add_argument(
        "--protocol",
        choices=("unseen", "seen"),
        default="unseen",
        help="unseen: family-grouped folds; seen: --folds seeded random 80/20 splits of every family",
    )
    ap.add_argument("--folds-of", type=int, default=4, help="families split into this many folds (as dga_compare)")
    ap.add_argument("--folds", type=int, default=4, help="run only the first N of those folds")
    ap.add_argument("--train-rows", type=int, default=0, help="subsample each fold's training rows (0: all)")
    ap.add_argument("--epochs", type=int, default=0, help="override the recipes' epochs (0: keep)")
    ap.add_argument("--tld", choices=("with", "without", "both"), default="with")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for training")
    ap.add_argument("--baseline", action="store_true", help="also the TF-IDF + LR baseline on the same folds")
    ap.add_argument("--speed-only", action="store_true", help="untrained graphs: ORT speed and size only")
    ap.add_argument("--final", action="store_true", help="score test_seen.jsonl once with the first candidate")
    ap.add_argument("--out", type=Path, default=REPO / "build/bench/dga_study.json")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    names, y, families = read_names(args.data / "train.jsonl")
    fam_names = sorted({f for f in families if f is not None})
    fam = np.asarray([fam_names.index(f) if f is not None else -1 for f in families], dtype=np.int64)
    wanted = [c for c in args.candidates.split(",") if c]
    unknown = [c for c in wanted if c not in CANDIDATES]
    if unknown:
        print(f"dga_study: unknown candidates {unknown}; known: {', '.join(CANDIDATES)}", file=sys.stderr)
        return 2
    # Timing names: training names in a seeded random order (arrival order at a resolver).
    timing = [names[i] for i in np.random.default_rng(args.seed).permutation(len(names))[: 40 * 1024]]
    results: list[dict] = []
    t_start = time.perf_counter()
    for c in wanted:
        recipe = CANDIDATES[c]
        if args.epochs:
            recipe = Recipe(**{**asdict(recipe), "epochs": args.epochs})
        tx, tl = encode_names(timing, recipe.max_bytes)
        speed = speed_and_size(build(recipe, 1).eval(), tx, tl, recipe.max_bytes)
        print(f"{c}: {speed}", file=sys.stderr, flush=True)
        if args.speed_only or not args.folds:
            results.append({"candidate": c, "tld": True, "folds": [], "speed": speed})
            continue
        views = {"tld": encode_names(names, recipe.max_bytes)}
        if args.tld != "with":
            views["notld"] = encode_names([without_tld(n) for n in names], recipe.max_bytes)
        data = {**views, "y": y, "fam": fam, "names": names}
        splits = fold_data(names, y, families, args)
        for tld in {"with": [True], "without": [False], "both": [True, False]}[args.tld] if splits else []:
            r = run_candidate(c, recipe, data, splits, args, tld)
            r["speed"] = speed
            results.append(r)
    if args.baseline and not args.speed_only and args.folds:
        splits = fold_data(names, y, families, args)
        for tld in {"with": [True], "without": [False], "both": [True, False]}[args.tld]:
            results.append(baseline_rows(names, y, splits, tld))
    report: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "results": results}
    if args.final:
        tnames, ty, _ = read_names(args.data / "test_seen.jsonl")
        recipe = CANDIDATES[wanted[0]]
        if args.epochs:
            recipe = Recipe(**{**asdict(recipe), "epochs": args.epochs})
        tlds = {"with": [True], "without": [False], "both": [True, False]}[args.tld]
        report["test_seen"] = [final_test(recipe, names, y, fam, tnames, ty, args, t) for t in tlds]
        for t in report["test_seen"]:
            m, b = t["model"], t["baseline"]
            print(
                f"test_seen ({'with' if t['tld'] else 'without'} TLD): {wanted[0]} ROC-AUC {m['roc_auc']:.4f} "
                f"recall@1%FPR {m['recall_at_1pct_fpr']:.4f}; baseline {b['roc_auc']:.4f} {b['recall_at_1pct_fpr']:.4f}"
            )
    report["wall_s"] = time.perf_counter() - t_start
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
