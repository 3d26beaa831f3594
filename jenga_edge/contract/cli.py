"""What the three commands (jenga-train, jenga-export, jenga-edge) share.

Our own errors become one line on stderr (`error: <what was wrong>`) and the
error's exit code (2: bad usage, config, data or bundle; 1: a failed check);
a command that needs an optional dependency which is not installed says which
extra to install instead of printing a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .errors import JengaError

# Modules of the optional extras, and the extra that brings each.
EXTRAS = {"torch": "train", "onnx": "train", "onnxscript": "train"}

F = TypeVar("F", bound=Callable[..., Any])


def _run(ctx: click.Context, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except JengaError as exc:
        click.echo(f"error: {exc}", err=True)
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


SET_HELP = (
    "Override a config value, e.g. --set batching.max_batch=64; KEY may index lists: sources[0].path (repeatable)."
)
