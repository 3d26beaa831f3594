"""Tests for jenga_edge/contract/typed.py: typed loading with key-path error messages."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

import msgspec
import pytest

from jenga_edge.contract.errors import ConfigError, JengaError
from jenga_edge.contract.typed import (
    Config,
    Invalid,
    apply_overrides,
    convert,
    describe,
    doc,
    join,
    load_yaml,
)


class Inner(Config, kw_only=True):
    size: int
    rate: Annotated[float, doc("a rate", ge=0.0, le=1.0)] = 0.5
    mode: Literal["fast", "slow"] = "fast"


class Fpr(Config, kw_only=True):
    target_fpr: Annotated[float, doc("target", ge=0.0, le=1.0)]


class Outer(Config, kw_only=True):
    name: str
    inner: Inner
    items: list[Inner] = []
    tags: dict[str, int] = {}
    limit: Annotated[int, doc("limit", ge=1)] | None = None
    flag: bool = False
    sizes: Annotated[list[int], doc("sizes", min_length=1)] = msgspec.field(default_factory=lambda: [1])
    rule: Literal["max_f1"] | Fpr = "max_f1"
    anything: Any = None


def ok(**extra):
    data = {"name": "n", "inner": {"size": 3}}
    data.update(extra)
    return data


def error_of(data, cls=Outer, source="cfg.yaml") -> str:
    with pytest.raises(ConfigError) as exc:
        convert(cls, data, source=source)
    return str(exc.value)


# --- successful builds ------------------------------------------------------------------


def test_build_minimal_fills_defaults():
    out = convert(Outer, ok())
    assert out.name == "n"
    assert out.inner == Inner(size=3, rate=0.5, mode="fast")
    assert out.items == [] and out.tags == {} and out.limit is None
    assert out.sizes == [1] and out.rule == "max_f1"


def test_build_nested_lists_dicts_unions():
    out = convert(
        Outer,
        ok(
            items=[{"size": 1}, {"size": 2, "mode": "slow"}],
            tags={"a": 1},
            limit=5,
            flag=True,
            rule={"target_fpr": 0.01},
            anything=[1, {"x": 2}],
        ),
    )
    assert [i.size for i in out.items] == [1, 2]
    assert out.items[1].mode == "slow"
    assert out.tags == {"a": 1}
    assert out.limit == 5 and out.flag is True
    assert out.rule == Fpr(target_fpr=0.01)
    assert out.anything == [1, {"x": 2}]


def test_int_is_accepted_for_float_and_converted():
    out = convert(Outer, ok(inner={"size": 1, "rate": 1}))
    assert out.inner.rate == 1.0 and isinstance(out.inner.rate, float)


def test_config_error_is_a_jenga_error_with_exit_code():
    assert issubclass(ConfigError, JengaError)
    assert ConfigError.exit_code == 2


# --- unknown keys -----------------------------------------------------------------------


def test_unknown_top_level_key_suggests_close_match():
    msg = error_of(ok(nmae="x"))
    assert msg.startswith("cfg.yaml: nmae: unknown key")
    assert "did you mean 'name'?" in msg
    assert "expected one of: name, inner, items" in msg


def test_unknown_nested_key_names_full_path():
    msg = error_of(ok(items=[{"size": 1}, {"size": 2, "sise": 3}]))
    assert "items[1].sise: unknown key" in msg
    assert "did you mean 'size'?" in msg


def test_unknown_key_without_close_match_has_no_suggestion():
    msg = error_of(ok(zzzzzz=1))
    assert "zzzzzz: unknown key" in msg
    assert "did you mean" not in msg


# --- wrong types ------------------------------------------------------------------------


def test_string_for_int_names_path_expected_and_found():
    msg = error_of(ok(inner={"size": "ten"}))
    assert msg == "cfg.yaml: inner.size: expected an integer, got str 'ten'"


def test_bool_is_not_an_int():
    msg = error_of(ok(inner={"size": True}))
    assert "inner.size: expected an integer, got bool True" in msg


def test_bool_is_not_a_float():
    msg = error_of(ok(inner={"size": 1, "rate": False}))
    assert "inner.rate: expected a number, got bool False" in msg


def test_float_is_not_an_int():
    msg = error_of(ok(inner={"size": 2.5}))
    assert "inner.size: expected an integer, got float 2.5" in msg


def test_int_is_not_a_bool():
    msg = error_of(ok(flag=1))
    assert "flag: expected true or false, got int 1" in msg


def test_list_where_mapping_expected():
    msg = error_of(ok(inner=[1, 2]))
    assert "inner: expected a mapping (Inner), got list [1, 2]" in msg


def test_mapping_where_list_expected():
    msg = error_of(ok(items={"size": 1}))
    assert "items: expected a list of a mapping (Inner), got dict" in msg


def test_dict_value_type_error_names_key():
    msg = error_of(ok(tags={"a": 1, "b": "two"}))
    assert "tags.b: expected an integer, got str 'two'" in msg


def test_top_level_not_a_mapping():
    msg = error_of([1, 2])
    assert msg.startswith("cfg.yaml: expected a mapping (Outer), got list")


def test_long_found_value_is_truncated():
    msg = error_of(ok(inner={"size": "y" * 200}))
    assert "..." in msg
    assert len(msg) < 150


def test_optional_accepts_null_and_rejects_other_types():
    assert convert(Outer, ok(limit=None)).limit is None
    msg = error_of(ok(limit="many"))
    assert "limit: expected an integer or null, got str 'many'" in msg


# --- missing keys -----------------------------------------------------------------------


def test_missing_required_key_names_path_and_type():
    msg = error_of({"name": "n"})
    assert msg == "cfg.yaml: inner: missing required key, expected a mapping (Inner)"


def test_missing_required_nested_key():
    msg = error_of(ok(items=[{"size": 1}, {"rate": 0.2}]))
    assert "items[1].size: missing required key, expected an integer" in msg


# --- literals ---------------------------------------------------------------------------


def test_literal_violation_lists_choices_and_suggests():
    msg = error_of(ok(inner={"size": 1, "mode": "fastt"}))
    assert "inner.mode: expected one of 'fast', 'slow', got str 'fastt'" in msg
    assert "did you mean 'fast'?" in msg


def test_literal_is_type_strict():
    class L(Config):
        v: Literal[1, 2]

    assert convert(L, {"v": 1}).v == 1
    msg = error_of({"v": True}, cls=L)
    assert "v: expected one of 1, 2, got bool True" in msg


# --- bounds -----------------------------------------------------------------------------


def test_value_above_max():
    msg = error_of(ok(inner={"size": 1, "rate": 1.5}))
    assert "inner.rate: expected a value <= 1.0, got 1.5" in msg


def test_value_below_min():
    msg = error_of(ok(inner={"size": 1, "rate": -0.1}))
    assert "inner.rate: expected a value >= 0.0, got -0.1" in msg


def test_bounds_hold_for_optional_int():
    msg = error_of(ok(limit=0))
    assert "limit: expected a value >= 1, got 0" in msg


def test_bounds_edges_are_inclusive():
    out = convert(Outer, ok(inner={"size": 1, "rate": 0.0}))
    assert out.inner.rate == 0.0
    assert convert(Outer, ok(inner={"size": 1, "rate": 1.0})).inner.rate == 1.0


def test_nonempty_list():
    msg = error_of(ok(sizes=[]))
    assert "sizes: expected a non-empty value" in msg


def test_bounded_factory_gives_fresh_lists():
    a, b = convert(Outer, ok()), convert(Outer, ok())
    a.sizes.append(9)
    assert b.sizes == [1]


# --- unions -----------------------------------------------------------------------------


def test_union_literal_form():
    assert convert(Outer, ok(rule="max_f1")).rule == "max_f1"


def test_union_mapping_form_reports_inner_error():
    msg = error_of(ok(rule={"target_fpr": 2}))
    assert "rule.target_fpr: expected a value <= 1.0, got 2" in msg  # as written
    msg = error_of(ok(rule={"targt_fpr": 0.1}))
    assert "rule.targt_fpr: unknown key (did you mean 'target_fpr'?)" in msg
    msg = error_of(ok(rule={}))
    assert "rule.target_fpr: missing required key" in msg


def test_union_neither_form():
    msg = error_of(ok(rule=5))
    assert "rule: expected one of 'max_f1' or a mapping (Fpr), got int 5" in msg


def test_union_literal_typo_keeps_suggestion():
    msg = error_of(ok(rule="max_f2"))
    assert "did you mean 'max_f1'?" in msg


# --- describe / join --------------------------------------------------------------------


def test_describe_names():
    assert describe(int) == "an integer"
    assert describe(float) == "a number"
    assert describe(str) == "a string"
    assert describe(bool) == "true or false"
    assert describe(type(None)) == "null"
    assert describe(Literal["a", "b"]) == "one of 'a', 'b'"
    assert describe(list[int]) == "a list of an integer"
    assert describe(dict[str, int]) == "a mapping of a string to an integer"
    assert describe(Inner) == "a mapping (Inner)"
    assert describe(int | None) == describe(Optional[int]) == "an integer or null"  # noqa: UP045 - both spellings


def test_join():
    assert join("", "a") == "a"
    assert join("a", "b") == "a.b"
    assert join("a", 3) == "a[3]"


# --- load_yaml --------------------------------------------------------------------------


def test_load_yaml_reads_mapping(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("a: 1\nb: [x, y]\n")
    assert load_yaml(p) == {"a": 1, "b": ["x", "y"]}


def test_load_yaml_missing_file(tmp_path):
    p = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as exc:
        load_yaml(p)
    assert str(exc.value) == f"{p}: config file not found"


def test_load_yaml_directory_is_not_a_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml(tmp_path)


def test_load_yaml_syntax_error_has_line_number(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError) as exc:
        load_yaml(p)
    msg = str(exc.value)
    assert msg.startswith(str(p))
    assert "invalid YAML" in msg
    assert "line 3" in msg


def test_load_yaml_bad_indentation_line_number(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("a:\n  b: 1\n c: 2\n")
    with pytest.raises(ConfigError, match=r"line 3, column \d+: invalid YAML"):
        load_yaml(p)


# --- apply_overrides --------------------------------------------------------------------


def test_override_dotted_key_parses_yaml_value():
    data = {"training": {"epochs": 30}}
    out = apply_overrides(
        data,
        ["training.epochs=5", "training.lr=0.001", "training.flag=true", "training.name=abc", "training.none=null"],
    )
    assert out is data
    assert data["training"] == {"epochs": 5, "lr": 0.001, "flag": True, "name": "abc", "none": None}


def test_override_scientific_notation_is_a_number():
    data = {}
    apply_overrides(data, ["lr=1e-3"])
    assert data["lr"] == 0.001


def test_load_yaml_scientific_notation_is_a_number(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("rate: 1e-3\n")
    assert load_yaml(p) == {"rate": 0.001}


def test_override_creates_missing_mappings():
    data = {}
    apply_overrides(data, ["a.b.c=x"])
    assert data == {"a": {"b": {"c": "x"}}}


def test_override_list_index():
    data = {"tasks": [{"loss_weight": 1.0}, {"loss_weight": 1.0}]}
    apply_overrides(data, ["tasks[1].loss_weight=2"])
    assert data["tasks"] == [{"loss_weight": 1.0}, {"loss_weight": 2}]


def test_override_last_part_is_index():
    data = {"sizes": [1, 2, 3]}
    apply_overrides(data, ["sizes[2]=9"])
    assert data["sizes"] == [1, 2, 9]


def test_override_nested_indices():
    data = {"m": [[0, 1], [2, 3]]}
    apply_overrides(data, ["m[1][0]=7"])
    assert data["m"] == [[0, 1], [7, 3]]


def test_override_value_may_hold_equals_and_lists():
    data = {}
    apply_overrides(data, ["a=x=y", "b=[1, 2]", "c={k: v}", "d="])
    assert data == {"a": "x=y", "b": [1, 2], "c": {"k": "v"}, "d": ""}


def test_override_strips_key_whitespace():
    data = {}
    apply_overrides(data, [" a.b =1"])
    assert data == {"a": {"b": 1}}


def test_override_without_equals():
    with pytest.raises(ConfigError) as exc:
        apply_overrides({}, ["training.epochs"])
    assert "--set 'training.epochs': expected KEY=VALUE" in str(exc.value)


def test_override_index_out_of_range():
    with pytest.raises(ConfigError, match=r"--set tasks\[3\]\.x: no list item \[3\] here"):
        apply_overrides({"tasks": [{}]}, ["tasks[3].x=1"])
    with pytest.raises(ConfigError, match=r"no list item \[5\] here"):
        apply_overrides({"sizes": [1]}, ["sizes[5]=1"])


def test_override_index_on_a_mapping():
    with pytest.raises(ConfigError, match=r"no list item \[0\] here"):
        apply_overrides({"training": {"epochs": 1}}, ["training[0].epochs=2"])


def test_override_non_numeric_index():
    with pytest.raises(ConfigError, match=r"expected a list index like \[0\], got \[a\]"):
        apply_overrides({"tasks": [{}]}, ["tasks[a].x=1"])
    with pytest.raises(ConfigError, match=r"got \[-1\]"):
        apply_overrides({"tasks": [{}]}, ["tasks[-1].x=1"])


def test_override_through_a_scalar():
    with pytest.raises(ConfigError, match=r"'x' is not inside a mapping"):
        apply_overrides({"training": {"epochs": 1}}, ["training.epochs.x=2"])
    with pytest.raises(ConfigError, match=r"'b' is not inside a mapping"):
        apply_overrides({"a": 1}, ["a.b.c=2"])


def test_override_empty_key():
    with pytest.raises(ConfigError, match="empty key"):
        apply_overrides({}, ["=5"])


def test_override_custom_source_in_message():
    with pytest.raises(ConfigError, match=r"^--override 'x'"):
        apply_overrides({}, ["x"], source="--override")


# --- tagged unions (the kinds of a registry) and cross-field checks -----------------------


class Kind(Config, tag_field="type", kw_only=True):
    pass


class Tcp(Kind, tag="tcp", kw_only=True):
    port: Annotated[int, doc("port", ge=0, le=65535)]
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if self.host == "nowhere":
            raise Invalid("host", "expected an IP address, got 'nowhere'")


class Udp(Kind, tag="udp", kw_only=True):
    port: int = 0


class Agent(Config, kw_only=True):
    sources: list[Tcp | Udp]
    sinks: dict[str, Tcp | Udp] = {}


def test_tagged_union_picks_the_member_by_its_type():
    out = convert(Agent, {"sources": [{"type": "udp"}, {"type": "tcp", "port": 5}]})
    assert isinstance(out.sources[0], Udp) and isinstance(out.sources[1], Tcp)


def test_unknown_type_lists_the_kinds_and_suggests():
    msg = error_of({"sources": [{"type": "tcpp", "port": 1}]}, cls=Agent)
    assert msg == "cfg.yaml: sources[0].type: expected one of 'tcp', 'udp', got str 'tcpp' (did you mean 'tcp'?)"


def test_missing_type_names_the_kinds():
    msg = error_of({"sources": [{"port": 1}]}, cls=Agent)
    assert msg == "cfg.yaml: sources[0].type: missing required key, expected one of 'tcp', 'udp'"


def test_unknown_key_of_a_kind_lists_that_kinds_keys():
    msg = error_of({"sources": [{"type": "tcp", "prot": 1}]}, cls=Agent)
    assert "sources[0].prot: unknown key (did you mean 'port'?); expected one of: port, host" in msg


def test_bound_inside_a_kind():
    msg = error_of({"sources": [{"type": "tcp", "port": 70000}]}, cls=Agent)
    assert msg == "cfg.yaml: sources[0].port: expected a value <= 65535, got 70000"


def test_post_init_check_names_the_key_below_the_section():
    msg = error_of({"sources": [{"type": "udp"}, {"type": "tcp", "port": 1, "host": "nowhere"}]}, cls=Agent)
    assert msg == "cfg.yaml: sources[1].host: expected an IP address, got 'nowhere'"


def test_error_inside_a_dict_value_names_its_key():
    msg = error_of({"sources": [], "sinks": {"a": {"type": "udp"}, "b": {"type": "tcp", "port": "x"}}}, cls=Agent)
    assert msg == "cfg.yaml: sinks.b.port: expected an integer, got str 'x'"


def test_non_string_key():
    msg = error_of(ok(tags={1: 2}))
    assert msg == "cfg.yaml: tags: keys must be strings, got int 1"


def test_describe_a_tagged_union():
    expected = "a mapping with type: one of 'tcp', 'udp'"
    assert describe(Tcp | Udp) == describe(Union[Tcp, Udp]) == expected  # noqa: UP007 - both spellings
