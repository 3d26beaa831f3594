"""`type: exec`: run a local program for an alert, argv only, every value validated."""

from __future__ import annotations

import math
import os
import re
import string
from collections.abc import Mapping
from typing import Annotated, Any

from ..contract.typed import Invalid, doc
from .base import ActionConfig, check_program, outcome, parse_address, run_command, short

_NAME_VALUE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_PORT_TEXT = re.compile(r"[0-9]{1,5}")

EXEC_PLACEHOLDERS = ("src_ip", "dest_ip", "dest_port", "task", "rule", "priority", "score", "threshold")


def _render_value(name: str, value: Any) -> tuple[str | None, str]:
    """Validate one alert value for a placeholder; return (text, "") or (None, why)."""
    if value is None:
        return None, f"missing value for {{{name}}}"
    if name in ("src_ip", "dest_ip"):
        addr, why = parse_address(value)
        return (str(addr), "") if addr is not None else (None, f"{{{name}}}: {why}")
    if name == "dest_port":
        port: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            port = value
        elif isinstance(value, str) and _PORT_TEXT.fullmatch(value):
            port = int(value)
        if port is None or not 0 <= port <= 65535:
            return None, f"{{{name}}}: invalid port {short(value)}"
        return str(port), ""
    if name in ("score", "threshold"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None, f"{{{name}}}: expected a finite number, got {short(value)}"
        return repr(float(value)), ""
    # task, rule, priority: names. A leading '-' could be read as an option.
    if not isinstance(value, str) or not _NAME_VALUE.fullmatch(value) or value.startswith("-"):
        return None, f"{{{name}}}: invalid name {short(value)}"
    return value, ""


def parse_template(argv: list[str]) -> list[list[tuple[str, str | None]]]:
    """Split each argv item into (literal text, placeholder name or None) pieces.

    ``{{`` and ``}}`` are literal braces. Only bare names from EXEC_PLACEHOLDERS
    are allowed: no positional ``{}``, attribute/index access, conversions or
    format specs. Raises Invalid naming the offending item.
    """
    parsed = []
    fmt = string.Formatter()
    for i, item in enumerate(argv):
        if not isinstance(item, str):
            raise Invalid(f"argv[{i}]", f"expected a string, got {short(item)}")
        if "\0" in item:
            raise Invalid(f"argv[{i}]", f"NUL character in {short(item)}")
        try:
            pieces = list(fmt.parse(item))
        except ValueError as exc:
            raise Invalid(
                f"argv[{i}]", f"bad template {item!r}: {exc} (write literal braces as '{{{{' and '}}}}')"
            ) from None
        out: list[tuple[str, str | None]] = []
        for literal, name, spec, conv in pieces:
            if name is None:
                out.append((literal, None))
                continue
            if name not in EXEC_PLACEHOLDERS:
                raise Invalid(
                    f"argv[{i}]", f"unknown placeholder {{{name}}} in {item!r}; allowed: {', '.join(EXEC_PLACEHOLDERS)}"
                )
            if spec or conv:
                raise Invalid(
                    f"argv[{i}]", f"placeholder {{{name}}} in {item!r} may not have a conversion or format spec"
                )
            out.append((literal, name))
        parsed.append(out)
    return parsed


class Config(ActionConfig, tag="exec", kw_only=True):
    """Run a local program for an alert, with alert values substituted into argv. Dry-run by default.

    ``argv`` is a template, e.g. ``["/usr/local/bin/quarantine", "--ip", "{src_ip}",
    "--score={score}"]``: a placeholder is a whole item or part of one, and each
    item stays exactly one argument (no shell, no word splitting). Each value is
    validated first: addresses parsed and written canonically, ``dest_port`` an
    integer 0-65535, ``score``/``threshold`` finite numbers, ``task``/``rule``/
    ``priority`` names of ``[A-Za-z0-9_.-]`` not starting with '-'. An alert whose
    value fails is skipped, and the program is not run.
    """

    argv: Annotated[
        list[str],
        doc(
            "the template; argv[0] an absolute path without a placeholder; placeholders: "
            + ", ".join(f"{{{p}}}" for p in EXEC_PLACEHOLDERS),
            min_length=1,
        ),
    ]
    timeout_s: Annotated[float, doc("kill the program after this", ge=0.1, le=3600.0)] = 30.0
    dry_run: Annotated[bool, doc("record the argv, run nothing (the safe default)")] = True

    def __post_init__(self) -> None:
        if not self.argv:
            raise Invalid("argv", "expected a non-empty list like ['/usr/local/bin/tool', '{src_ip}']")
        template = parse_template(self.argv)
        if any(name is not None for _, name in template[0]):
            raise Invalid("argv[0]", f"the program may not contain a placeholder, got {self.argv[0]!r}")
        check_program("argv[0]", self.argv[0], absolute=True)


class ExecAction:
    """Run the configured program with the alert's validated values."""

    type = "exec"

    @property
    def slow(self) -> bool:
        """A live command can hang: it runs behind the output stage; a dry run runs nothing."""
        return not self.config.dry_run

    def __init__(self, config: Config):
        self.config = config
        self._template = parse_template(config.argv)
        self.placeholders = sorted({n for item in self._template for _, n in item if n})

    @property
    def target(self) -> str:
        return self.config.argv[0]

    def addresses(self, alert: Mapping[str, Any]) -> list[Any]:
        return [alert.get("src_ip"), alert.get("dest_ip")]

    def render(self, alert: Mapping[str, Any]) -> tuple[list[str] | None, str]:
        """The argv for an alert, or (None, why) if a value fails validation."""
        values: dict[str, str] = {}
        for name in self.placeholders:
            text, why = _render_value(name, alert.get(name) if isinstance(alert, Mapping) else None)
            if text is None:
                return None, why
            values[name] = text
        argv = ["".join(lit + (values[n] if n else "") for lit, n in item) for item in self._template]
        return argv, ""

    def run(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        c = self.config
        target = c.argv[0]
        argv, why = self.render(alert)
        if argv is None:
            return outcome(self.type, target, dry_run=c.dry_run, argv=None, result="skipped", reason=why)
        if c.dry_run:
            return outcome(
                self.type,
                target,
                dry_run=True,
                argv=argv,
                result="dry_run",
                reason=f"would run {os.path.basename(target)}",
            )
        tool = os.path.basename(target) or target
        result, reason, status = run_command(argv, c.timeout_s, tool)
        return outcome(self.type, target, dry_run=False, argv=argv, result=result, reason=reason, exit_status=status)


def build(config: Config, context: Any = None) -> ExecAction:
    return ExecAction(config)
