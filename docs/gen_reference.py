"""Write docs/config-reference.md from the typed configs, so the reference cannot drift.

    python docs/gen_reference.py > docs/config-reference.md     # or: make docs

tests/test_docs.py fails when the committed file differs from what this prints.
Every key of the agent config (with every registered source, sink and action
kind) and of the experiment file, with its type, bounds, default and help text
as the Structs declare them (jenga_edge/config.py, trainer/config.py and each
kind's module).
"""

from __future__ import annotations

import sys
from typing import Any

import msgspec
import msgspec.inspect as mi

from jenga_edge import __version__
from jenga_edge.config import AgentConfig, config_type
from trainer.config import ExperimentConfig

HEADER = f"""# Configuration reference

Every key of the two config files, generated from the typed configs of jenga
{__version__} by `python docs/gen_reference.py` (`make docs`); a test fails when this
page and the code disagree. A malformed file is refused when it loads, with one
line naming the key path and what was expected.

* [Agent config](#agent-config) (`jenga-edge run --config`, one per appliance; see
  `firmware_configs/` and [agent.md](agent.md)): [sources](#sources), [sinks](#sinks),
  [actions](#actions).
* [Experiment file](#experiment-file) (`jenga-train --config`; see `examples/configs/`
  and [training.md](training.md)).

Any key can be overridden on the command line with `--set KEY=VALUE` (VALUE is
read as YAML); list items are indexed: `--set sources[0].path=/var/log/eve.json`,
`--set rules[1].threshold=0.9`, `--set sinks.siem.target=tcp://10.0.0.9:6514`.
"""


# --------------------------------------------------------------------------- types


def _bounds(t: Any) -> str:
    parts = []
    for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        v = getattr(t, attr, None)
        if v is not None:
            parts.append(f"{sign} {_num(v)}")
    if getattr(t, "min_length", None):
        parts.append("non-empty" if t.min_length == 1 else f"length >= {t.min_length}")
    return ", ".join(parts)


def _num(v: Any) -> str:
    if isinstance(v, int) and v >= 1 << 20 and v % 1024 == 0:
        for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20)):
            if v % size == 0:
                return f"{v // size} {unit}"
    return f"{v:g}" if isinstance(v, float) else str(v)


def type_name(t: Any) -> str:
    """A short name for a msgspec.inspect type, with its bounds."""
    if isinstance(t, mi.Metadata):
        return type_name(t.type)
    simple = {
        mi.IntType: "integer",
        mi.FloatType: "number",
        mi.StrType: "string",
        mi.BoolType: "true/false",
        mi.NoneType: "null",
        mi.AnyType: "any",
    }
    for cls, name in simple.items():
        if isinstance(t, cls):
            b = _bounds(t)
            return f"{name} ({b})" if b else name
    if isinstance(t, mi.LiteralType):
        return "one of " + ", ".join(f"`{v}`" for v in t.values)
    if isinstance(t, mi.ListType):
        b = _bounds(t)
        return f"list of {type_name(t.item_type)}" + (f" ({b})" if b else "")
    if isinstance(t, mi.DictType):
        return f"mapping of {type_name(t.key_type)} to {type_name(t.value_type)}"
    if isinstance(t, mi.StructType):
        return f"mapping ({t.tag_field} `{t.tag}`)" if t.tag is not None else f"mapping ({t.cls.__name__})"
    if isinstance(t, mi.UnionType):
        tagged = [u for u in t.types if isinstance(u, mi.StructType) and u.tag is not None]
        if tagged and len(tagged) == len(t.types):
            return f"an entry with `{tagged[0].tag_field}`: " + " \\| ".join(f"`{u.tag}`" for u in tagged)
        return " or ".join(type_name(u) for u in t.types)
    return type(t).__name__


def description(t: Any) -> str:
    if isinstance(t, mi.Metadata) and t.extra_json_schema:
        return str(t.extra_json_schema.get("description", ""))
    return ""


def _plain(t: Any) -> Any:
    return t.type if isinstance(t, mi.Metadata) else t


def default_text(f: mi.Field) -> str:
    if f.required:
        return "required"
    if f.encode_name == "mode" and isinstance(f.default, int):
        return f"`0{f.default:o}` (octal)"  # YAML 1.1 reads 0660 as octal; 0o660 would be a string
    if f.default == "":
        return '`""`'
    if f.default is not msgspec.NODEFAULT:
        return f"`{_yaml(f.default)}`"
    factory = f.default_factory
    if factory in (list, dict):
        return f"`{_yaml(factory())}`"
    if isinstance(factory, type) and issubclass(factory, msgspec.Struct):
        return "(defaults below)"
    try:
        value = factory()
    except Exception:  # noqa: BLE001 - a factory that needs the machine: describe it instead
        return "(computed)"
    if isinstance(value, msgspec.Struct):
        return f"`{_yaml(msgspec.to_builtins(value))}`"
    if getattr(factory, "__name__", "") == "gethostname":
        return "the host name"
    return f"`{_yaml(value)}`"


def _yaml(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_yaml(x)}" for k, x in v.items()) + "}"
    return str(v)


# --------------------------------------------------------------------------- tables


def table(
    struct: mi.StructType, prefix: str, docs: dict[str, str], tag_default: str = "required"
) -> tuple[list[str], list[tuple[str, Any]]]:
    """Rows for one Struct's fields, and the nested Structs to describe after it."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    nested: list[tuple[str, Any]] = []
    if struct.tag_field is not None and struct.tag is not None:
        rows.append(f"| `{prefix}{struct.tag_field}` | `{struct.tag}` | {tag_default} | the kind |")
    for f in struct.fields:
        key = f"{prefix}{f.encode_name}"
        plain = _plain(f.type)
        text = (description(f.type) or docs.get(f.encode_name, "")).replace("|", "\\|")
        rows.append(f"| `{key}` | {type_name(f.type)} | {default_text(f)} | {text} |")
        if isinstance(plain, mi.StructType):
            nested.append((f"{key}.", plain))
        elif isinstance(plain, mi.ListType) and isinstance(plain.item_type, mi.StructType):
            nested.append((f"{key}[].", plain.item_type))
        elif isinstance(plain, mi.DictType) and isinstance(_plain(plain.value_type), mi.StructType):
            nested.append((f"{key}.<name>.", _plain(plain.value_type)))
        elif isinstance(plain, mi.UnionType):
            for u in plain.types:
                if isinstance(u, mi.StructType) and u.tag is None:
                    nested.append((f"{key}.", u))
    return rows, nested


def section(
    title: str,
    struct: mi.StructType,
    prefix: str,
    docs: dict[str, str],
    level: int = 3,
    tag_default: str = "may be left out",
) -> list[str]:
    out = [f"{'#' * level} {title}", ""]
    if struct.cls.__doc__:
        out += [" ".join(struct.cls.__doc__.split()), ""]
    rows, nested = table(struct, prefix, docs, tag_default)
    out += [*rows, ""]
    for sub_prefix, sub in nested:
        out += section(f"`{sub_prefix.rstrip('.')}`", sub, sub_prefix, {}, level)
    return out


def kinds(title: str, anchor_note: str, union: Any, prefix: str, tag_default: str) -> list[str]:
    out = [f"### {title}", "", anchor_note, ""]
    for kind in union.types if isinstance(union, mi.UnionType) else [union]:
        out += section(f"type: `{kind.tag}`", kind, prefix, {}, level=4, tag_default=tag_default)
    return out


NAMED = "the name, if it is a kind"


def agent_reference() -> list[str]:
    info = mi.type_info(config_type())
    static = {f.encode_name: description(f.type) for f in mi.type_info(AgentConfig).fields}
    by_name = {f.encode_name: f for f in info.fields}
    out = ["## Agent config", "", " ".join((AgentConfig.__doc__ or "").split()), "", "Top-level keys:", ""]
    top = mi.StructType(
        cls=AgentConfig, fields=info.fields, tag_field=None, tag=None, array_like=False, forbid_unknown_fields=True
    )
    rows, nested = table(top, "", static)
    out += [*rows, ""]
    kinded = {"sources", "sinks", "actions"}
    for sub_prefix, sub in nested:
        if sub_prefix.split(".")[0].split("[")[0] in kinded:
            continue
        out += section(f"`{sub_prefix.rstrip('.')}`", sub, sub_prefix, {})
    out += kinds(
        "sources",
        "A list; each entry's `type` picks its kind (`jenga_edge/sources/<type>.py`).",
        _plain(by_name["sources"].type).item_type,
        "sources[].",
        "required",
    )
    out += kinds(
        "sinks",
        "A mapping of name to sink; an entry named after its kind may leave out `type` "
        "(`sinks: {jsonl: {path: alerts.jsonl}}`), `{}` is a kind with its defaults, a null "
        "entry is off (`--set sinks.syslog=null`), and several sinks of one kind take "
        "several names (`jenga_edge/sinks/<type>.py`).",
        _plain(by_name["sinks"].type).value_type,
        "sinks.<name>.",
        NAMED,
    )
    out += kinds(
        "actions",
        "A mapping of name to action; rules run actions by name (`actions: [alert, block]`); "
        "an entry named after its kind may leave out `type`, and a null entry is off; "
        "the name `alert` is reserved "
        "(`jenga_edge/actions/<type>.py`).",
        _plain(by_name["actions"].type).value_type,
        "actions.<name>.",
        NAMED,
    )
    return out


def experiment_reference() -> list[str]:
    info = mi.type_info(ExperimentConfig)
    out = ["## Experiment file", "", " ".join((ExperimentConfig.__doc__ or "").split()), ""]
    rows, nested = table(info, "", {})
    out += [*rows, ""]
    for sub_prefix, sub in nested:
        out += section(f"`{sub_prefix.rstrip('.')}`", sub, sub_prefix, {})
    return out


def render() -> str:
    lines = [HEADER, *agent_reference(), *experiment_reference()]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
