"""Text features at the edge, end to end, torch-free: a hand-built bundle whose graph reads
text_bytes/text_lengths (tests/jenga_edge/text_bundle.py), the decoder's text block, the
scorer's trimmed bytes axis, `jenga-edge check`, and the DNS profile
(firmware_configs/soc_sensor_dns.yaml) over Suricata 7 and Suricata 8 dns records."""

from __future__ import annotations

import copy
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import yaml
from click.testing import CliRunner
from msgspec.structs import replace

from jenga_edge.bundle import verify_bundle
from jenga_edge.check import check_lines
from jenga_edge.cli import main as edge_cli
from jenga_edge.contract.errors import BundleError
from jenga_edge.decode import EventDecoder
from jenga_edge.score import RuntimeConfig, Scorer, check_graph_io, trim_text

from .text_bundle import byte_stats_graph, dns_schema, write_text_bundle

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "suricata"
PROFILE = REPO / "firmware_configs" / "soc_sensor_dns.yaml"
DGA = "XJW8F2KQ1093.com."  # digits and length: the test graph scores it a threat
NAMES = ["", "a", "WWW.Example.COM.", "xjw8f2kq1093.com", "....", "é.fr", "x" * 80, "caf\u00e9-" * 20, DGA]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    return write_text_bundle(tmp_path_factory.mktemp("text") / "bundle")


@pytest.fixture(scope="module")
def scorer(bundle_dir) -> Scorer:
    return Scorer(verify_bundle(bundle_dir))


def flat(names: list) -> list[bytes]:
    return [json.dumps({"domain": n, "rrtype": "A", "qlen": 3}).encode() for n in names]


# --- decoder ----------------------------------------------------------------------------------


def test_decoded_text_is_the_trainers_vectorize_text():
    """Both tiers (and JENGA_EDGE_PURE=1, tier 2 alone) give the bytes the trainer's
    FeatureSchema.vectorize_text gives, value for value."""
    schema = dns_schema()
    dec = EventDecoder(schema)
    batch = dec.decode(flat(NAMES))
    want_bytes, want_len = schema.vectorize_text([{"domain": n} for n in NAMES])
    assert batch.rejects == [] and batch.index == list(range(len(NAMES)))
    assert batch.text.dtype == np.uint8 and batch.text.shape == (len(NAMES), 1, 64)
    np.testing.assert_array_equal(batch.text, want_bytes)
    np.testing.assert_array_equal(batch.text_len, want_len)
    assert batch.text_len[:, 0].tolist()[:5] == [0, 1, 15, 16, 0]


def test_text_rejects_name_the_field_and_rows_stay_aligned():
    lines = [
        b'{"domain": 5, "qlen": 1}',
        b'{"domain": {"x": 1}}',
        b'{"domain": ["a.com"]}',
        b'{"qlen": 2}',  # the schema requires domain
        b'{"domain": null}',
        *flat(["ok.example", "another.example"]),
    ]
    dec = EventDecoder(dns_schema(), key_fields=["domain"])
    batch = dec.decode(lines)
    got = [(r.index, r.reason, r.field) for r in batch.rejects]
    assert got == [(0, "wrong_type", "domain"), (1, "wrong_type", "domain"), (2, "wrong_type", "domain"),
                   (3, "missing_field", "domain"), (4, "missing_field", "domain")]  # fmt: skip
    assert "expected a string (text feature)" in batch.rejects[0].message
    assert batch.index == [5, 6] and batch.keys["domain"] == ["ok.example", "another.example"]
    assert [bytes(batch.text[r, 0, : batch.text_len[r, 0]]) for r in range(2)] == [b"ok.example", b"another.example"]


def test_min_present_counts_a_text_feature():
    dec = EventDecoder(dns_schema(), min_present=2)
    batch = dec.decode([b'{"domain": "a.com"}', b'{"domain": "a.com", "qlen": 4}'])
    assert [(r.index, r.reason) for r in batch.rejects] == [(0, "too_sparse")]
    assert "missing: qlen, rrtype" in batch.rejects[0].message and batch.index == [1]


def test_a_mapping_to_a_list_of_paths_reads_the_first_present_one():
    mapping = {"domain": ["dns.rrname", "dns.queries[].rrname"], "rrtype": ["dns.rrtype", "dns.queries[].rrtype"]}
    dec = EventDecoder(dns_schema(), mapping, key_fields=["domain"])
    lines = [
        b'{"dns": {"rrname": "seven.example", "rrtype": "AAAA"}}',
        b'{"dns": {"queries": [{"rrname": "eight.example", "rrtype": "TXT"}]}}',
        b'{"dns": {"rrname": null, "queries": [{"rrname": "both.example"}]}}',
        b'{"dns": {"rrname": "first.example", "queries": [{"rrname": 7}]}}',  # a later path is never looked at
    ]
    batch = dec.decode(lines)
    assert batch.rejects == [] and batch.keys["domain"] == ["seven.example", "eight.example", "both.example",
                                                            "first.example"]  # fmt: skip
    assert batch.cat[:, 0].tolist() == [2, 3, 0, 0]


# --- scorer -----------------------------------------------------------------------------------


def test_the_trimmed_bytes_axis_scores_as_the_full_width(bundle_dir, scorer):
    batch = EventDecoder(scorer.schema).decode(flat(NAMES[:6]))  # longest: 16 bytes
    text, _ = trim_text(batch.text, batch.text_len)
    assert text.shape == (6, 1, 16) and text.flags.c_contiguous
    assert trim_text(batch.text[:1], batch.text_len[:1])[0].shape == (1, 1, 1)  # all empty: one byte, not zero
    got = scorer.score(batch.num, batch.cat, batch.text, batch.text_len).score["dga"]
    session = ort.InferenceSession(verify_bundle(bundle_dir).graph("dga.onnx"), providers=["CPUExecutionProvider"])
    full = {"numeric": batch.num, "categorical": batch.cat, "text_bytes": batch.text, "text_lengths": batch.text_len}
    np.testing.assert_array_equal(got, session.run(["score"], full)[0])
    assert got[3] > 0.5 > got[2]  # the DGA-like name, the ordinary one
    with pytest.raises(ValueError, match="text features"):
        scorer.score(batch.num, batch.cat)


def test_a_text_batch_is_scored_in_slices_by_length_each_trimmed_to_its_longest(bundle_dir, scorer):
    batch = EventDecoder(scorer.schema).decode(flat(NAMES * 3))  # 27 events
    sliced = Scorer(verify_bundle(bundle_dir), cfg=RuntimeConfig(text_run_events=4))
    assert scorer.text_run_events == 48  # the default
    session = sliced.plan[0][0]
    fed: list[tuple[int, ...]] = []
    run = session.run
    session.run = lambda names, feed: fed.append(feed["text_bytes"].shape) or run(names, feed)  # type: ignore[method-assign]
    got = sliced.score(batch.num, batch.cat, batch.text, batch.text_len).score["dga"]
    # 7 runs of at most 4 events taken shortest first, each as wide as its own longest name
    lengths = sorted(int(n) for n in batch.text_len[:, 0])
    assert [n for n, _, _ in fed] == [4, 4, 4, 4, 4, 4, 3]
    assert [w for _, _, w in fed] == [max(1, max(lengths[i : i + 4])) for i in range(0, 27, 4)]
    assert fed[0][2] == 1 < fed[3][2] < int(batch.text_len.max()) == 64
    # the scores come back in the batch's order
    whole = Scorer(verify_bundle(bundle_dir), cfg=RuntimeConfig(text_run_events=0))
    np.testing.assert_allclose(
        got, whole.score(batch.num, batch.cat, batch.text, batch.text_len).score["dga"], rtol=1e-6
    )
    assert got.shape == (27,) and got[8] > 0.5 > got[2] and got[17] > 0.5 > got[11]


def test_graph_io_wants_a_uint8_text_input_with_a_free_bytes_axis(scorer):
    session, _, _ = scorer.plan[0]
    entry = scorer.entries[0]
    check_graph_io(session, "dga.onnx", entry.inputs, entry.outputs)  # the bundle's own graph fits
    text_spec = next(s for s in entry.inputs if s.name == "text_bytes")
    others = [s for s in entry.inputs if s.name != "text_bytes"]
    wrong = [*others, replace(text_spec, dtype="int64")]
    with pytest.raises(BundleError, match="input 'text_bytes' is uint8; the manifest says int64"):
        check_graph_io(session, "dga.onnx", wrong, entry.outputs)
    # a graph that fixes the bytes axis could not take a batch trimmed to its longest name
    fixed = ort.InferenceSession(byte_stats_graph(64).SerializeToString(), providers=["CPUExecutionProvider"])
    with pytest.raises(BundleError, match=r"input 'text_bytes' has shape \[batch, 1, 64\]"):
        check_graph_io(fixed, "dga.onnx", entry.inputs, entry.outputs)


# --- check ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event,code,head",
    [
        ('{"domain": "xjw8f2kq1093.com"}', 1, "event 1: THREAT"),
        ('{"domain": "xjw8f2kq.com"}', 0, "event 1: clean"),
        ('{"domain": 42}', 2, "event 1: REJECTED wrong_type (domain)"),
    ],
)
def test_check_gives_a_verdict_for_a_name(bundle_dir, event, code, head):
    res = CliRunner().invoke(edge_cli, ["check", "--bundle", str(bundle_dir), event])
    assert res.exit_code == code, res.output
    assert res.stdout.startswith(head)
    if code == 1:
        assert "top fields (log-odds): domain +" in res.stdout


def test_check_explains_a_name_by_occlusion(bundle_dir):
    (result,) = check_lines(verify_bundle(bundle_dir), [b'{"domain": "xjw8f2kq1093.com", "rrtype": "AAAA"}'])
    verdict = result.tasks[0]
    assert verdict.threat and verdict.top_fields[0][0] == "domain"
    assert [f for f, _ in verdict.top_fields] == ["domain", "rrtype"]


# --- the DNS profile, end to end --------------------------------------------------------------


def suricata7_lines() -> list[bytes]:
    """Real Suricata 7.0.10 dns records (queries and answers), and one real query with its
    name swapped for a DGA-like one (the capture has none)."""
    with gzip.open(FIXTURES / "benign_http-dns_wikipedia.eve.json.gz", "rb") as fh:
        real = [line.rstrip(b"\n") for line in fh if b'"event_type":"dns"' in line]
    query = json.loads(next(line for line in real if b'"type":"query"' in line))
    query["src_ip"], query["dns"]["rrname"] = "141.142.220.99", DGA
    return [*real, json.dumps(query).encode()]


def profile_config(tmp: Path, bundle: Path) -> Path:
    """The shipped profile with its bundle, stdin and files here (nothing else changed)."""
    cfg = yaml.safe_load(PROFILE.read_text())
    cfg = copy.deepcopy(cfg)
    cfg["agent"]["bundle"] = str(bundle)
    cfg["sources"] = [{"type": "stdin"}]
    cfg["sinks"] = {"jsonl": {"path": str(tmp / "alerts.jsonl")}}
    cfg["dead_letter"] = {"path": str(tmp / "dead.jsonl")}
    cfg["metrics"] = {"stats_interval_s": 0}
    path = tmp / "dns.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_to_eof(cfg: Path, stdin: bytes) -> dict:
    """The summary the agent exits with."""
    proc = subprocess.run(
        [sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(cfg)],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return json.loads(proc.stderr.decode().strip().splitlines()[-1])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_the_dns_profile_alerts_on_suricata_7_and_8_queries_naming_host_and_name(bundle_dir, tmp_path):
    v7 = suricata7_lines()
    v8 = (FIXTURES / "dns_v3_suricata8.jsonl").read_bytes().splitlines()
    bad = b'{"event_type":"dns","src_ip":"10.9.9.9","dns":{"type":"query","rrname":12345,"rrtype":"A"}}'
    # a name with an ANSI escape and a newline: the rule's output shows them escaped, one line
    forged = b'{"event_type":"dns","src_ip":"10.7.7.7","dns":{"type":"query","rrname":"9x8\\u001b[2J7\\nALERT.6.com"}}'
    summary = run_to_eof(profile_config(tmp_path, bundle_dir), b"\n".join([*v7, *v8, forged, bad]) + b"\n")
    v8 = [*v8, forged]
    queries = sum(json.loads(ln).get("dns", {}).get("type") in ("query", "request") for ln in [*v7, *v8])
    assert summary["received"] == len(v7) + len(v8) + 1
    assert summary["scored"] == queries and summary["rejected"] == 1  # answers, responses, flows: filtered
    assert summary["filtered"] == summary["received"] - queries - 1
    alerts = [a for a in read_jsonl(tmp_path / "alerts.jsonl") if a["event_type"] == "alert"]
    by_host = {a["src_ip"]: a for a in alerts}
    assert set(by_host) == {"141.142.220.99", "10.20.0.57", "10.7.7.7"}  # the hosts that asked, not the resolver
    forged_alert = by_host.pop("10.7.7.7")
    assert forged_alert["fields"]["domain"] == "9x8\x1b[2J7\nALERT.6.com"  # the JSON value: the name as it came
    assert forged_alert["output"].startswith("10.7.7.7 asked for 9x8\\x1b[2J7\\nALERT.6.com (<rrtype?> via")
    for host, alert in by_host.items():
        assert alert["rule"] == "dga_domain" and alert["task"] == "dga" and alert["score"] > 0.5
        assert alert["output"].startswith(f"{host} asked for {DGA} (A")  # A, or AAAA (Suricata 7)
        assert alert["fields"]["domain"] == DGA
    (dead,) = read_jsonl(tmp_path / "dead.jsonl")
    assert (dead["reason"], dead["field"]) == ("wrong_type", "domain") and "12345" in dead["line"]


def test_the_dns_profile_validates_against_a_text_bundle(bundle_dir):
    res = CliRunner().invoke(edge_cli, ["validate", "--config", str(PROFILE), "--bundle", str(bundle_dir)])
    assert res.exit_code == 0, res.output
    assert "domain <- dns.rrname | dns.queries[].rrname" in res.stdout
    assert "scored: event_type: dns, dns.type: ['query', 'request']" in res.stdout


def test_inspect_shows_a_text_feature(bundle_dir):
    res = CliRunner().invoke(edge_cli, ["inspect", "--bundle", str(bundle_dir)])
    assert res.exit_code == 0, res.output
    assert "1 numeric, 1 categorical, 1 text)" in res.stdout
    row = next(line for line in res.stdout.splitlines() if " domain " in line)
    assert row.split()[2:7] == ["text", "bytes", "<=", "64,", "dns,"] and row.split()[-1] == "reject"
