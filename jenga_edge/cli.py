"""jenga-edge: the gateway-side command (torch-free).

Exit codes: 0 success; 2 bad usage or a bundle that fails verification.
"""

from __future__ import annotations

import json
import sys

import click

from .errors import JengaError


class EdgeGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except JengaError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=EdgeGroup)
@click.version_option(package_name="jenga-ai-edge", prog_name="jenga-edge")
def main() -> None:
    """Score security events with a verified JengaAI bundle at the edge."""


@main.command()
@click.argument("bundle", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the verified manifest as JSON.")
def inspect(bundle: str, as_json: bool) -> None:
    """Verify BUNDLE (every sha256) and print what it holds."""
    from .bundle import verify_bundle
    from .inspect_view import render

    b = verify_bundle(bundle)
    if as_json:
        click.echo(json.dumps(b.manifest, indent=2))
    else:
        click.echo(render(b))


if __name__ == "__main__":
    sys.exit(main())
