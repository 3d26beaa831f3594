"""jenga-edge inspect: verify a bundle and show what it holds."""

from __future__ import annotations

from typing import Any

import click

from ..bundle import Bundle
from ..contract.cli import bundle_option, trust_options
from ..contract.schema import Feature
from ..contract.text import escape_text
from .events_text import describe


@click.command()
@bundle_option("The bundle directory.", required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the verified manifest as JSON.")
@trust_options()
def inspect(bundle: str, as_json: bool, trust_keys: tuple[str, ...], require_signature: bool) -> None:
    """Verify a bundle (its bundle_id, every sha256, its signature with --trust-key) and print what it holds."""
    from ..bundle import verify_bundle
    from ..contract.bundle_format import encode_manifest
    from ..trust import store_from_options

    b = verify_bundle(bundle, store_from_options(trust_keys, require_signature))
    if as_json:
        click.echo(encode_manifest(b.manifest).decode("utf-8"), nl=False)
    else:
        click.echo(render(b))


def table(rows: list[tuple[Any, ...]], indent: str = "  ") -> str:
    # Cells come from the manifest, which anyone can write (a bundle_id is only a hash):
    # escaped, so a name cannot add a line or drive the terminal.
    rows = [tuple("" if c is None else escape_text(str(c)) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _num(v: Any, fmt: str = ".4f") -> str:
    return format(v, fmt) if isinstance(v, (int, float)) else "-"


def render(b: Bundle) -> str:
    m = b.manifest
    prod, req = m.producer, m.requires
    e = escape_text
    out = [
        f"bundle {m.bundle_id}  (format {m.format} v{m.format_version}, verified: all sha256 match, {b.trust_note})",
        f"  project {e(m.project_name)}, created {e(m.created)}, by {e(prod.name)} "
        f"{e(prod.version)} (torch {e(prod.torch)}, opset {prod.opset})",
        f"  needs jenga-edge >= {e(req.agent_min_version)}, onnxruntime >= {e(req.onnxruntime_min_version)}",
        f"  source model sha256 {e(m.source_model.sha256[:16])}…",
        "",
        "tasks:",
    ]
    rows = [("task", "type", "mode", "learner", "source", "file", "sha256", "threshold", "labels", "parity")]
    for t in b.tasks.values():
        worst = max((v for v in t.parity.values() if isinstance(v, (int, float))), default=None)
        rows.append(
            (
                t.name,
                t.type,
                t.mode,
                t.learner,
                t.source,
                t.file,
                t.sha256[:12] + "…",
                _num(t.threshold),
                ",".join(t.labels),
                _num(worst, ".1e"),
            )
        )
    out.append(table(rows))
    out += ["", "validation metrics:"]
    mrows: list[tuple[str, ...]] = [("task", "accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "macro_f1")]
    for t in b.tasks.values():
        mrows.append((t.name, *(_num(t.metrics.get(k)) for k in mrows[0][1:])))
    out.append(table(mrows))
    if b.merged:
        out += ["", "merged graphs (trunk runs once for these tasks):"]
        out.append(
            table(
                [("file", "source", "tasks", "sha256")]
                + [(g.file, g.source, ",".join(g.tasks), g.sha256[:12] + "…") for g in b.merged]
            )
        )
    seen = set()
    for t in b.tasks.values():
        if t.source in seen:
            continue
        seen.add(t.source)
        out += [
            "",
            f"schema of source {e(repr(t.source))} (sha256 {t.schema.sha256[:12]}…, "
            f"{len(t.schema.numeric)} numeric, {len(t.schema.categorical)} categorical"
            + (f", {len(t.schema.text)} text" if t.schema.text else "")
            + "):",
        ]
        srows: list[tuple[object, ...]] = [("#", "feature", "kind", "encoding", "categories", "default", "missing")]
        for i, f in enumerate(t.schema.features):
            cats = str(len(f.categories) - 1) if f.kind == "categorical" else ""
            default = "<unk>" if f.kind == "categorical" else '""' if f.is_text else _num(f.impute, "g")
            srows.append(
                (
                    i,
                    f.name,
                    f.kind,
                    _encoding(f),
                    cats,
                    default,
                    "impute" if f.allow_missing else "reject",
                )
            )
        out.append(table(srows))
        if t.schema.events is not None:
            out += ["", f"event model of source {e(repr(t.source))}:"]
            out += [f"  {line}" for line in describe(t.schema.events, t.schema.names)]
    return "\n".join(out)


def _encoding(f: Feature) -> str:
    """How the graph takes a feature: its numeric encoding, an embedding, or a text's bytes."""
    if f.is_text:  # e.g. "bytes <= 64, dns, tail"
        return f"bytes <= {f.text_limit}, {f.normalize or 'none'}, {f.truncate or 'head'}"
    return f.encoding if f.kind != "categorical" else "embedding"
