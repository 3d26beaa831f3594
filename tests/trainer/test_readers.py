"""Tests for trainer/readers.py: JSON arrays, JSON Lines and CSV."""

from __future__ import annotations

import json
import math

import pytest

from jenga_edge.contract.errors import DataError
from jenga_edge.contract.events import EventModel
from jenga_edge.contract.typed import convert
from trainer.readers import _cell, read_rows, row_locator

ROWS = [{"a": 1, "b": "x", "c": 1.5}, {"a": 2, "b": "y", "c": None}, {"a": 3, "b": "z", "c": 0.0}]


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# --- JSON -------------------------------------------------------------------------------


def test_json_array(tmp_path):
    p = write(tmp_path, "d.json", json.dumps(ROWS, indent=2))
    assert read_rows(p) == ROWS


def test_json_array_with_leading_whitespace(tmp_path):
    p = write(tmp_path, "d.json", "\n\n   " + json.dumps(ROWS))
    assert read_rows(p) == ROWS


def test_json_explicit_format_any_suffix(tmp_path):
    p = write(tmp_path, "d.data", json.dumps(ROWS))
    assert read_rows(p, fmt="json") == ROWS


def test_json_invalid_has_line_number(tmp_path):
    p = write(tmp_path, "d.json", '[\n{"a": 1},\n{"a": }\n]')
    with pytest.raises(DataError) as exc:
        read_rows(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: line 3: invalid JSON")


def test_json_not_an_array(tmp_path):
    p = write(tmp_path, "d.data", '{"a": 1}')
    with pytest.raises(DataError, match="expected a JSON array of objects, got dict"):
        read_rows(p, fmt="json")


def test_json_array_item_not_object(tmp_path):
    p = write(tmp_path, "d.json", '[{"a": 1}, [1, 2]]')
    with pytest.raises(DataError, match=r"item 1: expected an object, got list"):
        read_rows(p)


def test_json_empty_array(tmp_path):
    p = write(tmp_path, "d.json", "[]")
    with pytest.raises(DataError, match=r": no rows$"):
        read_rows(p)


def test_json_limit(tmp_path):
    p = write(tmp_path, "d.json", json.dumps(ROWS))
    assert read_rows(p, limit=2) == ROWS[:2]


# --- JSON Lines -------------------------------------------------------------------------


def jsonl(rows):
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".JSONL"])
def test_jsonl(tmp_path, suffix):
    p = write(tmp_path, "d" + suffix, jsonl(ROWS))
    assert read_rows(p) == ROWS


def test_jsonl_blank_lines_ok(tmp_path):
    text = "\n" + json.dumps(ROWS[0]) + "\n\n   \n" + json.dumps(ROWS[1]) + "\n" + json.dumps(ROWS[2])
    p = write(tmp_path, "d.jsonl", text)
    assert read_rows(p) == ROWS


def test_jsonl_bad_line_names_line_number(tmp_path):
    text = json.dumps(ROWS[0]) + "\n\n" + '{"a": 2,}\n' + json.dumps(ROWS[2]) + "\n"
    p = write(tmp_path, "d.jsonl", text)
    with pytest.raises(DataError) as exc:
        read_rows(p)
    assert str(exc.value).startswith(f"{p}: line 3: invalid JSON")


def test_jsonl_line_not_object(tmp_path):
    p = write(tmp_path, "d.jsonl", json.dumps(ROWS[0]) + "\n[1, 2]\n")
    with pytest.raises(DataError, match=r"line 2: expected an object, got list"):
        read_rows(p)


def test_jsonl_limit_stops_early(tmp_path):
    # a bad line after the limit is never read
    p = write(tmp_path, "d.jsonl", jsonl(ROWS[:2]) + "not json\n")
    assert read_rows(p, limit=2) == ROWS[:2]


def test_jsonl_only_blank_lines(tmp_path):
    p = write(tmp_path, "d.jsonl", "\n\n")
    with pytest.raises(DataError, match="no rows"):
        read_rows(p)


def test_json_suffix_holding_jsonl_is_detected(tmp_path):
    p = write(tmp_path, "d.json", jsonl(ROWS))
    assert read_rows(p) == ROWS


def test_json_suffix_jsonl_with_leading_blank_lines(tmp_path):
    p = write(tmp_path, "d.json", "\n\n" + jsonl(ROWS))
    assert read_rows(p) == ROWS


# --- CSV --------------------------------------------------------------------------------


def test_csv_with_header(tmp_path):
    p = write(tmp_path, "d.csv", "a,b,c\n1,x,1.5\n2,y,\n3,z,0.0\n")
    assert read_rows(p) == ROWS


def test_csv_headerless_with_columns(tmp_path):
    p = write(tmp_path, "d.csv", "1,x,1.5\n2,y,\n3,z,0.0\n")
    assert read_rows(p, columns=["a", "b", "c"]) == ROWS


def test_csv_txt_suffix_is_csv(tmp_path):
    p = write(tmp_path, "KDDTrain.txt", "0,tcp,normal\n2,udp,neptune\n")
    rows = read_rows(p, columns=["duration", "proto", "attack"])
    assert rows == [
        {"duration": 0, "proto": "tcp", "attack": "normal"},
        {"duration": 2, "proto": "udp", "attack": "neptune"},
    ]


def test_csv_blank_lines_skipped(tmp_path):
    p = write(tmp_path, "d.csv", "a,b,c\n1,x,1.5\n\n2,y,\n3,z,0.0\n\n")
    assert read_rows(p) == ROWS


def test_csv_quoted_cells(tmp_path):
    p = write(tmp_path, "d.csv", 'a,b\n"1","x, y"\n')
    assert read_rows(p) == [{"a": 1, "b": "x, y"}]


def test_csv_wrong_field_count_with_header(tmp_path):
    p = write(tmp_path, "d.csv", "a,b,c\n1,x,1.5\n2,y\n")
    with pytest.raises(DataError) as exc:
        read_rows(p)
    assert str(exc.value) == f"{p}: line 3: 2 fields, expected 3 (header has 3)"


def test_csv_wrong_field_count_headerless(tmp_path):
    p = write(tmp_path, "d.csv", "1,x,1.5\n2,y,3,4\n")
    with pytest.raises(DataError) as exc:
        read_rows(p, columns=["a", "b", "c"])
    assert str(exc.value) == f"{p}: line 2: 4 fields, expected 3 (columns: list has 3)"


def test_csv_line_number_counts_blank_lines(tmp_path):
    p = write(tmp_path, "d.csv", "a,b\n1,2\n\n3\n")
    with pytest.raises(DataError, match=r": line 4: 1 fields, expected 2"):
        read_rows(p)


def test_csv_empty_file(tmp_path):
    p = write(tmp_path, "d.csv", "")
    with pytest.raises(DataError, match="empty CSV file"):
        read_rows(p)


def test_csv_header_only(tmp_path):
    p = write(tmp_path, "d.csv", "a,b,c\n")
    with pytest.raises(DataError, match="no rows"):
        read_rows(p)


def test_csv_limit_stops_early(tmp_path):
    p = write(tmp_path, "d.csv", "a,b\n1,2\n3,4\nbroken\n")
    assert read_rows(p, limit=2) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


def test_csv_explicit_format_overrides_suffix(tmp_path):
    p = write(tmp_path, "d.json", "a,b\n1,2\n")
    assert read_rows(p, fmt="csv") == [{"a": 1, "b": 2}]


def test_tsv_is_tab_separated(tmp_path):
    p = write(tmp_path, "d.tsv", "a\tb\n1\tx\n2\ty\n")
    assert read_rows(p) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


# --- cells ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,value",
    [
        ("1", 1),
        ("-7", -7),
        (" 42 ", 42),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("-0.25", -0.25),
        ("abc", "abc"),
        (" tcp ", "tcp"),
        ("", None),
        ("   ", None),
        ("True", "True"),
        ("0x1f", "0x1f"),
    ],
)
def test_cell_parsing(text, value):
    out = _cell(text)
    assert out == value
    assert type(out) is type(value)


def test_cell_nan_is_a_float():
    assert math.isnan(_cell("nan"))


# --- detection and errors ---------------------------------------------------------------


def test_unknown_suffix(tmp_path):
    p = write(tmp_path, "d.parquet", "x")
    with pytest.raises(DataError) as exc:
        read_rows(p)
    msg = str(exc.value)
    assert "cannot tell the format from the suffix '.parquet'" in msg
    assert "set format: json, jsonl or csv" in msg


def test_no_suffix(tmp_path):
    p = write(tmp_path, "data", "x")
    with pytest.raises(DataError, match="suffix ''"):
        read_rows(p)


def test_missing_file(tmp_path):
    p = tmp_path / "nope.jsonl"
    with pytest.raises(DataError) as exc:
        read_rows(p)
    assert str(exc.value) == f"{p}: data file not found"


def test_directory_is_not_a_data_file(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        read_rows(tmp_path)


def test_str_path_accepted(tmp_path):
    p = write(tmp_path, "d.jsonl", jsonl(ROWS))
    assert read_rows(str(p)) == ROWS


@pytest.mark.parametrize(
    "fmt,name,text",
    [
        ("json", "d.json", json.dumps(ROWS)),
        ("jsonl", "d.jsonl", jsonl(ROWS)),
        ("csv", "d.csv", "a,b,c\n1,x,1.5\n2,y,\n3,z,0.0\n"),
    ],
)
@pytest.mark.parametrize("limit", [1, 3, 10])
def test_limit_every_format(tmp_path, fmt, name, text, limit):
    p = write(tmp_path, name, text)
    assert read_rows(p, fmt=fmt, limit=limit) == ROWS[:limit]


# --- a list of files: one source, each file from a fresh start of the windows


def _flows(host, times):
    return "".join(json.dumps({"t": t, "src_ip": host}) + "\n" for t in times)


def _count_model():
    return convert(EventModel, {"time": "t", "windows": {"n": {"kind": "count", "key": ["src_ip"], "window_s": 60}}})


def test_files_in_a_list_are_read_in_order(tmp_path):
    a = write(tmp_path, "a.jsonl", jsonl([{"x": 1}, {"x": 2}]))
    b = write(tmp_path, "b.csv", "x\n3\n")
    assert [r["x"] for r in read_rows([a, b])] == [1, 2, 3]


def test_windows_start_afresh_in_each_file(tmp_path):
    # The second capture's host starts seconds after the first's: one stream would count
    # the first file's flows in its window; separate captures must not.
    a = write(tmp_path, "a.jsonl", _flows("10.0.0.1", [100.0, 101.0, 102.0]))
    b = write(tmp_path, "b.jsonl", _flows("10.0.0.1", [103.0, 104.0]))
    model = _count_model()
    assert [r["n"] for r in read_rows([a, b], events=model, names=["n"])] == [1, 2, 3, 1, 2]
    one = write(tmp_path, "one.jsonl", _flows("10.0.0.1", [100.0, 101.0, 102.0, 103.0, 104.0]))
    assert [r["n"] for r in read_rows(one, events=model, names=["n"])] == [1, 2, 3, 4, 5]


def test_limit_counts_rows_over_the_files(tmp_path):
    a = write(tmp_path, "a.jsonl", jsonl([{"x": 1}, {"x": 2}]))
    b = write(tmp_path, "b.jsonl", jsonl([{"x": 3}, {"x": 4}]))
    assert [r["x"] for r in read_rows([a, b], limit=3)] == [1, 2, 3]
    assert [r["x"] for r in read_rows([a, b], limit=2)] == [1, 2]


def test_a_missing_or_empty_file_in_a_list_is_named(tmp_path):
    a = write(tmp_path, "a.jsonl", jsonl([{"x": 1}]))
    with pytest.raises(DataError, match=r"nothere\.jsonl: data file not found"):
        read_rows([a, tmp_path / "nothere.jsonl"])
    empty = write(tmp_path, "empty.jsonl", "\n")
    with pytest.raises(DataError, match=r"empty\.jsonl: no rows"):
        read_rows([a, empty])


def test_starts_and_the_row_locator_name_each_rows_file(tmp_path):
    a = write(tmp_path, "a.jsonl", jsonl([{"x": 1}, {"x": 2}]))
    b = write(tmp_path, "b.jsonl", jsonl([{"x": 3}, {"x": 4}, {"x": 5}]))
    starts: list[int] = []
    rows = read_rows([a, b], starts=starts)
    assert starts == [0, 2] and len(rows) == 5
    locate = row_locator([a, b], starts)
    assert [locate(i) for i in (0, 1, 2, 4)] == [f"{a}: row 0", f"{a}: row 1", f"{b}: row 0", f"{b}: row 2"]


def test_an_empty_list_of_files_is_refused(tmp_path):
    with pytest.raises(DataError, match="no data files given"):
        read_rows([])
