"""jenga-export --model MODEL_DIR -o BUNDLE_DIR: verified per-task ONNX graphs in a bundle.

`jenga-export keygen -o NAME` makes an Ed25519 key pair and `jenga-export sign
--bundle DIR --key NAME.key` signs a bundle (export/signing.py).

Exit codes: 0 exported; 1 the checker or the parity check failed (nothing is
written); 2 bad usage: missing/foreign model directory, unknown task,
unsupported opset, non-empty output without --force, parity rows of another
schema, a bundle that does not match its manifest (sign).
"""

from __future__ import annotations

import time

import click

from jenga_edge.contract.bundle_format import Manifest
from jenga_edge.contract.cli import JengaGroup, bundle_option, model_option, version_option

from .opsets import DEFAULT_OPSET, SUPPORTED_OPSETS


@click.group(cls=JengaGroup, invoke_without_command=True)
@version_option("jenga-export")
@model_option(required=False)
@click.option(
    "-o",
    "--output",
    "bundle_dir",
    type=click.Path(file_okay=False),
    help="The bundle directory to write.",
)
@click.option("--tasks", help="Comma-separated tasks to export (default: all).")
@click.option(
    "--opset",
    default=DEFAULT_OPSET,
    show_default=True,
    type=click.IntRange(SUPPORTED_OPSETS.start, SUPPORTED_OPSETS.stop - 1),
    help="ONNX opset.",
)
@click.option(
    "--atol",
    default=1e-5,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="Max abs diff allowed between torch and onnxruntime, per output.",
)
@click.option(
    "--data", type=click.Path(dir_okay=False), help="Rows for the parity check (default: the model's validation split)."
)
@click.option("--force", is_flag=True, help="Replace a non-empty output directory.")
@click.pass_context
def main(
    ctx: click.Context,
    model_dir: str | None,
    bundle_dir: str | None,
    tasks: str | None,
    opset: int,
    atol: float,
    data: str | None,
    force: bool,
) -> None:
    """Export each task of a trained model as its own ONNX graph (plus one merged
    graph per shared schema), check every graph with onnx.checker and against
    torch, and write a bundle with a sha256-verified manifest.

    `keygen` and `sign` make a signing key and sign a bundle with it."""
    if ctx.invoked_subcommand is not None:
        return
    if model_dir is None or bundle_dir is None:
        raise click.UsageError(f"Missing option '{'--model' if model_dir is None else '--output'}'.")
    from .bundle_writer import ExportOptions, export_bundle

    opts = ExportOptions(
        [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None, opset, atol, data, force
    )
    t0 = time.perf_counter()
    click.echo(f"exporting {model_dir} -> {bundle_dir} (opset {opset}, atol {atol:g})", err=True)
    manifest = export_bundle(model_dir, bundle_dir, opts, log=lambda s: click.echo(s, err=True))
    print_summary(manifest)
    click.echo(f"bundle {manifest.bundle_id} written to {bundle_dir} in {time.perf_counter() - t0:.1f} s", err=True)


def print_summary(manifest: Manifest) -> None:
    rows = [("task", "inputs", "outputs", "size", "max abs diff")]
    for t in manifest.tasks:
        ins = " ".join(f"{i.name}[{i.shape[1]}]" for i in t.inputs)
        outs = " ".join(o.name for o in t.outputs)
        worst = max(v for k, v in t.parity.items() if isinstance(v, float))
        rows.append((t.name, ins, outs, f"{t.size_bytes / 1024:.1f} KiB", f"{worst:.2e}"))
    inputs = {t.source: " ".join(i.name for i in t.inputs) for t in manifest.tasks}
    for m in manifest.merged:
        worst = max(v for k, v in m.parity.items() if isinstance(v, float))
        rows.append(
            (
                f"[merged {m.source}]",
                inputs[m.source],
                f"{len(m.tasks)} tasks",
                f"{m.size_bytes / 1024:.1f} KiB",
                f"{worst:.2e}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


@main.command()
@click.option(
    "-o",
    "--output",
    "prefix",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the key pair: OUTPUT.key (private, mode 0600) and OUTPUT.pub.",
)
def keygen(prefix: str) -> None:
    """Make an Ed25519 key pair for signing bundles. Keep OUTPUT.key on the workstation;
    give OUTPUT.pub to the agents (agent.trust.keys)."""
    from .signing import keygen as make

    private, public, kid = make(prefix)
    click.echo(f"key {kid}: private {private}, public {public}", err=True)


@main.command()
@bundle_option("The bundle directory to sign.", required=True)
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The Ed25519 private key (PEM, as keygen or `openssl genpkey -algorithm ed25519` write it).",
)
def sign(bundle: str, key_path: str) -> None:
    """Sign a bundle: check its bundle_id and every graph's sha256, then write its
    signature.json (Ed25519 over the bundle_id)."""
    from .signing import sign_bundle

    sig = sign_bundle(bundle, key_path)
    click.echo(f"bundle {sig.bundle_id} signed by key {sig.key_id}", err=True)


if __name__ == "__main__":
    main()
