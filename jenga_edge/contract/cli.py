"""What the three commands (jenga-train, jenga-export, jenga-edge) share.

Our own errors become one line on stderr (`error: <what was wrong>`, control
characters escaped) and the error's exit code (2: bad usage, config, data or
bundle; 1: a failed check); a command that needs an optional dependency which is not installed says which
extra to install instead of printing a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .errors import JengaError
from .text import escape_text

# Modules of the optional extras, and the extra that brings each.
EXTRAS = {"torch": "train", "onnx": "train", "onnxscript": "train", "matplotlib": "train", "nacl": "signing"}

F = TypeVar("F", bound=Callable[..., Any])


def _run(ctx: click.Context, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except JengaError as exc:
        # One line, whatever the message quotes (a key of the config, a name from a bundle):
        # control characters escaped; backslashes kept, as repr() already doubled them.
        click.echo(f"error: {escape_text(str(exc), backslash=False)}", err=True)
        ctx.exit(exc.exit_code)
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root not in EXTRAS:
            raise
        click.echo(
            f"error: {ctx.find_root().info_name} needs {root}, which is not installed: "
            f"pip install 'jenga-ai-edge[{EXTRAS[root]}]' (or `make setup` in a checkout)",
            err=True,
        )
        ctx.exit(2)


class JengaGroup(click.Group):
    """A command group with our error handling."""

    def invoke(self, ctx: click.Context) -> Any:
        return _run(ctx, lambda: super(JengaGroup, self).invoke(ctx))


class JengaCommand(click.Command):
    """A single command with our error handling."""

    def invoke(self, ctx: click.Context) -> Any:
        return _run(ctx, lambda: super(JengaCommand, self).invoke(ctx))


def version_option(prog_name: str) -> Callable[[F], F]:
    return click.version_option(package_name="jenga-ai-edge", prog_name=prog_name, message="%(prog)s %(version)s")


# One definition per input, so that the three commands name it the same way everywhere.


def config_option(help: str) -> Callable[[F], F]:
    return click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help=help)


def set_option(example: str = "batching.max_batch=64", indexed: str = "sources[0].path=FILE") -> Callable[[F], F]:
    return click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help=f"Override a config value (VALUE is read as YAML), e.g. --set {example}; KEY may index lists: "
        f"--set {indexed} (repeatable).",
    )


def model_option(required: bool = True) -> Callable[[F], F]:
    return click.option(
        "--model",
        "model_dir",
        required=required,
        type=click.Path(file_okay=False),
        help="The best_model/ directory jenga-train wrote.",
    )


def bundle_option(help: str, required: bool = False) -> Callable[[F], F]:
    return click.option("--bundle", required=required, type=click.Path(file_okay=False), help=help)


def trust_options() -> Callable[[F], F]:
    """--trust-key (repeatable) and --require-signature: a trust store given on the command line
    (the agent's is agent.trust in its config)."""
    keys = click.option(
        "--trust-key",
        "trust_keys",
        multiple=True,
        metavar="KEY",
        help="A trusted Ed25519 public key: a PEM file or 'ed25519:<base64>' (repeatable); the bundle's "
        "signature, if any, must verify with one.",
    )
    require = click.option(
        "--require-signature", is_flag=True, help="Refuse a bundle not signed by one of the --trust-key keys."
    )

    def both(f: F) -> F:
        return keys(require(f))

    return both


def data_options(help: str) -> Callable[[F], F]:
    """--data FILE and --format (auto: by its suffix)."""
    data = click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False), help=help)
    fmt = click.option(
        "--format",
        "fmt",
        default="auto",
        show_default=True,
        type=click.Choice(["auto", "json", "jsonl", "csv"]),
        help="The data's format (auto: by its suffix).",
    )

    def both(f: F) -> F:
        return data(fmt(f))

    return both
