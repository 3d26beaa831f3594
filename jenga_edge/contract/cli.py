"""Shared by the three commands (jenga-train, jenga-export, jenga-edge)."""

from __future__ import annotations

import click

from .errors import JengaError


class JengaGroup(click.Group):
    """Turns our own errors into one line on stderr and the error's exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except JengaError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
