import json
import os
import shutil
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from jenga_edge.bundle import MANIFEST, verify_bundle
from jenga_edge.cli import main as edge_cli
from jenga_edge.contract.bundle_format import (
    BUNDLE_FORMAT_VERSION,
    Manifest,
    decode_manifest,
    encode_manifest,
    manifest_digest,
)
from jenga_edge.contract.errors import BundleError
from jenga_edge.contract.schema import FeatureSchema


@pytest.fixture
def bundle_copy(network_bundle, tmp_path) -> Path:
    d = tmp_path / "bundle"
    shutil.copytree(network_bundle[0], d)
    return d


def reseal(m: dict) -> None:
    """Recompute bundle_id after an edit, as anyone who can write the manifest can: what is
    under test is then the check after it (a signature is what a forger cannot redo)."""
    try:
        m["bundle_id"] = manifest_digest(msgspec.convert(m, Manifest))
    except msgspec.ValidationError:
        pass  # a manifest the Structs refuse is refused before its bundle_id is looked at


def edit_manifest(d: Path, change, resealed: bool = True) -> None:
    m = json.loads((d / MANIFEST).read_text())
    change(m)
    if resealed:
        reseal(m)
    (d / MANIFEST).write_text(json.dumps(m))


def test_a_good_bundle_verifies(bundle_copy):
    b = verify_bundle(bundle_copy)
    assert b.tasks["threat"].threshold == pytest.approx(b.manifest.tasks[0].threshold)
    assert b.tasks["threat"].schema.sha256 == b.manifest.tasks[0].schema_sha256
    assert [i.name for i in b.tasks["threat"].inputs] == ["numeric", "categorical"]


@pytest.mark.parametrize("name", ["threat.onnx", "merged-net.onnx"])
def test_one_changed_byte_is_caught(bundle_copy, name):
    raw = bytearray((bundle_copy / name).read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (bundle_copy / name).write_bytes(bytes(raw))
    with pytest.raises(BundleError, match=rf"{name} sha256 mismatch.*refusing to load"):
        verify_bundle(bundle_copy)


def test_missing_graph_is_refused(bundle_copy):
    (bundle_copy / "attack_type.onnx").unlink()
    with pytest.raises(BundleError, match=r"attack_type.onnx is listed in the manifest but missing"):
        verify_bundle(bundle_copy)


def test_a_swapped_schema_is_caught(bundle_copy):
    def change(m):
        m["tasks"][0]["schema"]["features"][0]["mean"] += 1.0

    edit_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match=r"manifest.json: tasks\[0\]\.schema_sha256: does not match the schema$"):
        verify_bundle(bundle_copy)


def test_an_unknown_learner_is_refused(bundle_copy):
    edit_manifest(bundle_copy, lambda m: m["tasks"][0].update(learner="xgboost"))
    with pytest.raises(BundleError, match=r"tasks\[0\]\.learner: 'xgboost': expected one of network, lightgbm"):
        verify_bundle(bundle_copy)


def test_file_names_cannot_escape_the_bundle(bundle_copy):
    def change(m):
        m["tasks"][0]["file"] = "../threat.onnx"

    edit_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match=r"refusing file name '../threat.onnx'"):
        verify_bundle(bundle_copy)


@pytest.mark.parametrize(
    "change,text",
    [
        (
            lambda m: m.update(format_version=BUNDLE_FORMAT_VERSION + 1),
            f"format_version {BUNDLE_FORMAT_VERSION + 1} is not supported",
        ),
        (
            lambda m: m.update(format_version=1),
            "format_version 1 is not supported .*written by jenga-export 0.1; re-export",
        ),
        (
            lambda m: m.update(format_version=2),
            "format_version 2 is not supported .*written by jenga-export 0.2, whose bundle_id covers no threshold.*"
            "re-export",
        ),
        (
            lambda m: m.update(format_version=3),
            "format_version 3 is not supported .*before tasks named their learner; re-export",
        ),
        (lambda m: m.update(format="other"), "expected 'jenga.bundle'"),
        (lambda m: m["requires"].update(agent_min_version="9.0.0"), "needs jenga-edge >= 9.0.0"),
        (lambda m: m["requires"].update(onnxruntime_min_version="99.0"), "needs onnxruntime >= 99.0"),
        (lambda m: m["tasks"][0].pop("sha256"), r"tasks\[0\]\.sha256: missing required key, expected a string"),
        (lambda m: m["tasks"][0].update(type="regression"), r"tasks\[0\]\.type: task type 'regression' is not known"),
        (
            lambda m: m["tasks"][1]["outputs"].pop(),
            r"tasks\[1\]\.outputs: \(role, dtype\) probabilities float32 are not those of task kind "
            r"classification \(probabilities float32, label int64\)",
        ),
        (
            lambda m: m["tasks"][0]["outputs"][0].update(role="label"),
            r"tasks\[0\]\.outputs: \(role, dtype\) label float32",
        ),
        (
            lambda m: m["tasks"][1]["outputs"][1].update(dtype="float32"),
            r"tasks\[1\]\.outputs: \(role, dtype\) probabilities float32, label float32 are not",
        ),
        (
            lambda m: m["tasks"][1]["outputs"].append(m["tasks"][1]["outputs"][1]),
            r"tasks\[1\]\.outputs: \(role, dtype\) probabilities float32, label int64, label int64",
        ),
        (lambda m: m["tasks"].append(m["tasks"][0]), r"tasks: a task name is listed twice"),
        (
            lambda m: m["merged"][0]["outputs"]["threat"][0].pop("role"),
            r"merged\[0\]\.outputs\.threat: \(role, dtype\) <no role> float32",
        ),
        (
            lambda m: m["merged"][0]["outputs"]["threat"][0].update(role="label"),
            r"merged\[0\]\.outputs\.threat: \(role, dtype\) label float32",
        ),
        (
            lambda m: m["merged"][0]["tasks"].append("ghost"),
            r"merged\[0\]: merged-net.onnx names tasks it does not describe",
        ),
        (lambda m: m.update(signature="x"), r"signature: unknown key"),
        (lambda m: m["tasks"][0]["schema"].update(_index={}), r"tasks\[0\]\.schema\._index: unknown key"),
        (
            lambda m: m["tasks"][0]["schema"]["features"][0].update(kind="audio"),
            r"tasks\[0\]\.schema\.features\[0\]\.kind: expected one of 'numeric', 'boolean', 'categorical', 'text'",
        ),
        (
            lambda m: m["tasks"][0]["schema"]["features"][0].update(kind="text"),
            r"tasks\[0\]\.schema: feature 'packet_size': a text feature needs max_bytes from 1 to 1024, got none",
        ),
        (
            lambda m: m["tasks"][0]["schema"].update(version=4),
            r"tasks\[0\]\.schema: feature schema version 4 is not",
        ),  # what an agent does not understand, it refuses
        (
            lambda m: m["merged"][0]["outputs"].pop("threat"),
            r"merged\[0\]: merged-net.onnx names tasks it does not describe",
        ),
    ],
)
def test_manifest_problems_are_refused(bundle_copy, change, text):
    edit_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match=text):
        verify_bundle(bundle_copy)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not a bundle"):
        verify_bundle(tmp_path)
    (tmp_path / MANIFEST).write_text("{oops")
    with pytest.raises(BundleError, match="not valid JSON"):
        verify_bundle(tmp_path)


def test_the_manifest_round_trips_through_its_structs(bundle_copy):
    data = (bundle_copy / MANIFEST).read_bytes()
    manifest = decode_manifest(data, "m")
    assert encode_manifest(manifest) == data  # what export wrote is what the agent reads
    assert manifest.format_version == BUNDLE_FORMAT_VERSION == 5
    assert {t.learner for t in manifest.tasks} == {"network"}
    assert [o.role for o in manifest.tasks[1].outputs] == ["probabilities", "label"]


def test_the_manifest_holds_each_schema_as_its_json_and_nothing_else(bundle_copy):
    m = json.loads((bundle_copy / MANIFEST).read_text())
    for t in m["tasks"]:
        assert t["schema"] == FeatureSchema.from_json(t["schema"]).to_json()
        assert set(t["schema"]) == {"version", "features", "events"}
        assert all(set(i) == {"name", "dtype", "shape", "features"} for i in t["inputs"])
        assert all(set(o) == {"name", "dtype", "shape", "role"} for o in t["outputs"])


def edge(*args):
    return CliRunner().invoke(edge_cli, list(args))


def test_inspect_prints_tasks_schema_and_hashes(bundle_copy):
    res = edge("inspect", "--bundle", str(bundle_copy))
    assert res.exit_code == 0, res.output
    assert "verified: all sha256 match" in res.output
    for text in ["threat", "attack_type", "merged-net.onnx", "packet_size", "protocol", "embedding", "<unk>"]:
        assert text in res.output
    js = json.loads(edge("inspect", "--bundle", str(bundle_copy), "--json").output)
    assert js["format"] == "jenga.bundle"
    assert js == json.loads((bundle_copy / MANIFEST).read_text())


def test_inspect_escapes_what_the_manifest_says(bundle_copy):
    """Anyone can write a manifest and recompute its bundle_id: its text reaches the terminal
    escaped (no raw ESC, no extra line), in the header and in the tables."""
    hostile = "p\x1b[2J\nFORGED line\u202e"

    def change(m):
        m["project_name"] = hostile
        m["tasks"][0]["labels"] = ["normal\x1b[31m", "threat\r\nFORGED"]

    edit_manifest(bundle_copy, change)
    plain = edge("inspect", "--bundle", str(bundle_copy))
    assert plain.exit_code == 0, plain.output
    assert "\x1b" not in plain.output and "\r" not in plain.output and "\u202e" not in plain.output
    assert not any(line.startswith("FORGED") for line in plain.output.splitlines())
    assert "project p\\x1b[2J\\nFORGED line\\u202e," in plain.output
    assert "normal\\x1b[31m,threat\\r\\nFORGED" in plain.output


def test_inspect_refuses_a_tampered_bundle(bundle_copy):
    raw = bytearray((bundle_copy / "threat.onnx").read_bytes())
    raw[-1] ^= 0xFF
    (bundle_copy / "threat.onnx").write_bytes(bytes(raw))
    res = edge("inspect", "--bundle", str(bundle_copy))
    assert res.exit_code == 2
    assert res.output.strip().startswith("error:") and "sha256 mismatch" in res.output
    assert len(res.output.strip().splitlines()) == 1


# ---------------------------------------------------------------- bundle trust (issue 11)


def onnx_graph(n_num: int, n_cat: int, *, batch="batch", width=None, num_type=None, out="score", out_type=None):
    """Another model's graph: score = sigmoid(sum of the numeric row); the keywords make it
    differ from what the manifest says in one way each."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    num_type = num_type or TensorProto.FLOAT
    out_type = out_type or TensorProto.FLOAT
    nodes = [
        helper.make_node("ReduceSum", ["numeric", "axes"], ["s"], keepdims=0),
        helper.make_node("Cast", ["s"], ["s32"], to=TensorProto.FLOAT),
        helper.make_node("Sigmoid", ["s32"], ["p"]),
        helper.make_node("Cast", ["p"], [out], to=out_type),
    ]
    graph = helper.make_graph(
        nodes,
        "other_model",
        [
            helper.make_tensor_value_info("numeric", num_type, [batch, width or n_num]),
            helper.make_tensor_value_info("categorical", TensorProto.INT64, [batch, n_cat]),
        ],
        [helper.make_tensor_value_info(out, out_type, [batch])],
        [numpy_helper.from_array(np.array([1], np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model.SerializeToString()


def put_graph(d: Path, task: str, data: bytes) -> None:
    """Replace a task's graph and write its sha256 and size into the manifest (resealed): a
    bundle whose hashes all match, holding another model's graph."""
    from jenga_edge.contract.digest import sha256

    m = json.loads((d / MANIFEST).read_text())
    (entry,) = [t for t in m["tasks"] if t["name"] == task]
    (d / entry["file"]).write_bytes(data)
    entry.update(sha256=sha256(data).hexdigest(), size_bytes=len(data))
    reseal(m)
    (d / MANIFEST).write_text(json.dumps(m))


def widths(d: Path) -> tuple[int, int]:
    schema = verify_bundle(d).tasks["threat"].schema
    return len(schema.numeric), len(schema.categorical)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m["tasks"][0].update(threshold=0.999),
        lambda m: m["tasks"][1].update(labels=m["tasks"][1]["labels"][::-1]),
        lambda m: m["tasks"][0]["schema"]["features"][0].update(mean=1e9),  # with its schema_sha256 redone below
    ],
    ids=["threshold", "reversed_labels", "schema"],
)
def test_an_edited_manifest_no_longer_matches_its_bundle_id(bundle_copy, change):
    from jenga_edge.contract.schema import FeatureSchema as FS

    def edit(m):
        change(m)
        for t in m["tasks"]:
            t["schema_sha256"] = FS.from_json(t["schema"]).sha256

    before = verify_bundle(bundle_copy).bundle_id
    edit_manifest(bundle_copy, edit, resealed=False)
    with pytest.raises(BundleError, match=r"bundle_id '[0-9a-f]{16}'… does not match the manifest's content .*edited"):
        verify_bundle(bundle_copy)
    edit_manifest(bundle_copy, lambda m: None)  # the id recomputed: it loads, under another bundle_id
    assert verify_bundle(bundle_copy).bundle_id != before


def test_a_graph_swapped_after_verification_is_never_loaded(bundle_copy):
    """The scorer builds its sessions from the bytes that were hashed: replacing the file
    after verify_bundle changes nothing (the old loader reopened it by path)."""
    from jenga_edge.decode import EventDecoder
    from jenga_edge.score import RuntimeConfig, Scorer
    from tests.jenga_edge.test_agent import events

    b = verify_bundle(bundle_copy)
    dec = EventDecoder(b.tasks["threat"].schema).decode(events(50))
    want = Scorer(verify_bundle(bundle_copy), ["threat"], RuntimeConfig(use_merged_graph=False))
    (bundle_copy / "threat.onnx").write_bytes(onnx_graph(*widths(bundle_copy)))  # swapped after b was verified
    got = Scorer(b, ["threat"], RuntimeConfig(use_merged_graph=False))
    assert got.score(dec.num, dec.cat).score["threat"].tolist() == want.score(dec.num, dec.cat).score["threat"].tolist()


def test_verification_reads_each_file_once_and_never_by_path_again(bundle_copy, monkeypatch):
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: opened.append(str(p)) or real_open(p, *a, **k))
    b = verify_bundle(bundle_copy)
    assert sorted(opened[1:]) == sorted([MANIFEST, "threat.onnx", "attack_type.onnx", "merged-net.onnx"])
    assert b.graph("threat.onnx") == (bundle_copy / "threat.onnx").read_bytes()


@pytest.mark.parametrize("name", ["threat.onnx", MANIFEST])
def test_a_symlink_to_a_file_outside_the_bundle_is_refused(bundle_copy, tmp_path, name):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(bundle_copy / name, outside / name)  # the same bytes: every sha256 still matches
    (bundle_copy / name).symlink_to(outside / name)
    with pytest.raises(BundleError, match=rf"{name} is a symbolic link, not a regular file; refusing it"):
        verify_bundle(bundle_copy)


def test_a_fifo_is_refused_without_blocking(bundle_copy):
    (bundle_copy / "threat.onnx").unlink()
    os.mkfifo(bundle_copy / "threat.onnx")  # opening it for reading would wait for a writer
    with pytest.raises(BundleError, match=r"threat.onnx is a fifo, not a regular file"):
        verify_bundle(bundle_copy)


def test_a_file_name_with_a_trailing_newline_is_refused(bundle_copy):
    shutil.copy(bundle_copy / "threat.onnx", bundle_copy / "threat.onnx\n")
    edit_manifest(bundle_copy, lambda m: m["tasks"][0].update(file="threat.onnx\n"))
    with pytest.raises(BundleError, match=r"refusing file name 'threat.onnx\\n'"):
        verify_bundle(bundle_copy)


def test_a_graph_of_another_size_than_the_manifest_says_is_refused(bundle_copy):
    edit_manifest(bundle_copy, lambda m: m["tasks"][0].update(size_bytes=m["tasks"][0]["size_bytes"] + 1))
    with pytest.raises(BundleError, match=r"threat.onnx is \d+ bytes, expected \d+ as the manifest says"):
        verify_bundle(bundle_copy)


def _mismatches():
    from onnx import TensorProto

    return [
        ({"batch": 1}, r"threat.onnx: input 'numeric' has shape \[1, 5\]; the manifest says \[batch, 5\]"),
        ({"width": 7}, r"threat.onnx: input 'numeric' has shape \[batch, 7\]; the manifest says \[batch, 5\]"),
        ({"num_type": TensorProto.DOUBLE}, r"threat.onnx: input 'numeric' is float64; the manifest says float32"),
        ({"out": "prob"}, r"threat.onnx: output 'score' is in the manifest but not in the graph"),
        ({"out_type": TensorProto.DOUBLE}, r"threat.onnx: output 'score' is float64; the manifest says float32"),
    ]


@pytest.mark.parametrize("kw,text", _mismatches(), ids=["fixed_batch", "width", "dtype", "output_name", "out_dtype"])
def test_a_graph_that_does_not_fit_the_manifest_is_refused_naming_the_tensor(bundle_copy, kw, text):
    from jenga_edge.score import RuntimeConfig, Scorer

    assert widths(bundle_copy) == (5, 2)  # the messages below name them
    put_graph(bundle_copy, "threat", onnx_graph(5, 2, **kw))
    b = verify_bundle(bundle_copy)  # every hash matches: the graph is what does not fit
    with pytest.raises(BundleError, match=text):
        Scorer(b, ["threat"], RuntimeConfig(use_merged_graph=False))


def test_a_reload_with_another_models_graph_is_refused_and_the_old_model_keeps_scoring(network_bundle, tmp_path):
    """The issue's case: another model's graph (a fixed batch of one: the all-zero trial
    event passes) put in the bundle with its sha256. The reload is refused with the reason;
    the agent keeps scoring with the graph it had, and no batch fails."""
    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config
    from tests.jenga_edge.test_agent import batch, events, write_config

    live = tmp_path / "live"
    shutil.copytree(network_bundle[0], live)
    cfg = write_config(tmp_path, live, [{"type": "stdin"}])
    logs: list[str] = []
    agent = Agent(load_agent_config(cfg), str(cfg), log=logs.append)
    put_graph(live, "threat", onnx_graph(*widths(live), batch=1))
    agent.request_reload()
    agent._reload()
    assert agent.reloads == {"ok": 0, "failed": 1}
    assert any("reload failed" in ln and "threat.onnx: input 'numeric' has shape [1, 5]" in ln for ln in logs), logs
    agent.process(batch(events(40, seed=13)))
    summary = agent.summary()
    assert summary["scored"] == 40 and summary["rejected"] == 0


def test_alerts_cite_the_merged_graph_when_it_scored(network_bundle, tmp_path):
    from jenga_edge.agent import Agent
    from jenga_edge.config import load_agent_config
    from tests.jenga_edge.test_agent import batch, events, write_config

    b = verify_bundle(network_bundle[0])
    merged = b.merged[0]
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "stdin"}],
        agent={"id": "t", "bundle": str(network_bundle[0]), "tasks": ["threat", "attack_type"]},
        rules=[{"rule": "any", "task": "threat", "threshold": 0.0, "actions": ["alert"]}],
    )
    agent = Agent(load_agent_config(cfg), str(cfg), log=lambda s: None)
    assert agent.pipe.scorer.merged
    alerts = agent.process(batch(events(5, seed=3)))
    assert alerts and all(
        a["model"] == {"bundle_id": b.bundle_id, "file": "merged-net.onnx", "sha256": merged.sha256} for a in alerts
    )
    assert agent.pipe.bundle.graphs == {}  # the verified bytes are let go once the sessions are built


# ---------------------------------------------------------------- signatures


@pytest.fixture
def keys(tmp_path):
    """Two signing keys: (private path, public path, key id) each."""
    from export.signing import keygen

    return [keygen(tmp_path / f"k{i}") for i in (1, 2)]


def store(*pubs, require=False):
    from jenga_edge.trust import TrustConfig, TrustStore

    return TrustStore.load(TrustConfig(keys=[str(p) for p in pubs], require_signature=require))


def test_a_signed_bundle_is_accepted_by_any_trusted_key(bundle_copy, keys):
    from export.signing import sign_bundle

    (k1, pub1, id1), (_, pub2, _) = keys
    sign_bundle(bundle_copy, k1)
    assert verify_bundle(bundle_copy, store(pub1, require=True)).signer == id1
    assert verify_bundle(bundle_copy, store(pub2, pub1, require=True)).signer == id1  # rotation: old and new
    inline = "ed25519:" + __import__("base64").b64encode(store(pub1).keys[id1]).decode()
    assert verify_bundle(bundle_copy, store(inline, require=True)).signer == id1
    assert verify_bundle(bundle_copy).signer is None  # no trust store: not read


def test_an_unsigned_bundle_is_refused_when_a_signature_is_required(bundle_copy, keys):
    (_, pub1, _), _ = keys
    with pytest.raises(BundleError, match=r"the bundle is not signed \(no signature.json\) and .*require_signature"):
        verify_bundle(bundle_copy, store(pub1, require=True))
    assert verify_bundle(bundle_copy, store(pub1)).signer is None  # not required: it loads, unsigned


def test_a_signature_by_an_untrusted_key_is_refused(bundle_copy, keys):
    from export.signing import sign_bundle

    (k1, _, id1), (_, pub2, id2) = keys
    sign_bundle(bundle_copy, k1)
    with pytest.raises(BundleError, match=rf"signed by key {id1}, which agent.trust.keys does not list .*{id2}"):
        verify_bundle(bundle_copy, store(pub2))


def test_a_forged_signature_is_refused(bundle_copy, keys):
    """signature.json names the trusted key, but its bytes are not that key's signature."""
    import base64

    from export.signing import sign_bundle

    (k1, pub1, id1), _ = keys
    sign_bundle(bundle_copy, k1)
    sig = json.loads((bundle_copy / "signature.json").read_text())
    raw = bytearray(base64.b64decode(sig["signature"]))
    raw[0] ^= 1
    sig["signature"] = base64.b64encode(bytes(raw)).decode()
    (bundle_copy / "signature.json").write_text(json.dumps(sig))
    with pytest.raises(BundleError, match=rf"the signature by key {id1} does not verify"):
        verify_bundle(bundle_copy, store(pub1))


def test_a_manifest_edited_after_signing_is_refused_even_resealed(bundle_copy, keys):
    from export.signing import sign_bundle

    (k1, pub1, _), _ = keys
    sign_bundle(bundle_copy, k1)
    edit_manifest(bundle_copy, lambda m: m["tasks"][0].update(threshold=0.999))  # bundle_id recomputed
    with pytest.raises(BundleError, match=r"signature.json: signs bundle [0-9a-f]{16}…, the manifest is bundle"):
        verify_bundle(bundle_copy, store(pub1, require=True))


def test_the_agent_config_holds_the_trust_store(bundle_copy, keys, tmp_path):
    from export.signing import sign_bundle
    from jenga_edge.agent import build_pipeline
    from jenga_edge.config import load_agent_config
    from jenga_edge.contract.errors import ConfigError
    from tests.jenga_edge.test_agent import write_config

    (k1, pub1, id1), _ = keys
    agent = {"id": "t", "bundle": str(bundle_copy), "trust": {"keys": [pub1.name], "require_signature": True}}
    cfg = write_config(tmp_path, bundle_copy, [{"type": "stdin"}], agent=agent)  # the key relative to the file
    with pytest.raises(BundleError, match="not signed"):
        build_pipeline(load_agent_config(cfg))
    sign_bundle(bundle_copy, k1)
    assert build_pipeline(load_agent_config(cfg)).bundle.signer == id1
    agent["trust"] = {"keys": [], "require_signature": True}
    cfg = write_config(tmp_path, bundle_copy, [{"type": "stdin"}], agent=agent)
    with pytest.raises(ConfigError, match=r"agent\.trust\.require_signature: needs at least one key"):
        load_agent_config(cfg)
    agent["trust"] = {"keys": ["nope.pub"]}
    cfg = write_config(tmp_path, bundle_copy, [{"type": "stdin"}], agent=agent)
    with pytest.raises(ConfigError, match=r"agent\.trust\.keys\[0\]: .*nope.pub: cannot read the key"):
        load_agent_config(cfg)


def test_inspect_checks_the_signature_with_trust_keys(bundle_copy, keys):
    from export.signing import sign_bundle

    (k1, pub1, id1), (_, pub2, _) = keys
    res = edge("inspect", "--bundle", str(bundle_copy), "--trust-key", str(pub1), "--require-signature")
    assert res.exit_code == 2 and "not signed (no signature.json) and --require-signature is set" in res.output
    assert "signature not checked: no trusted keys" in edge("inspect", "--bundle", str(bundle_copy)).output
    sign_bundle(bundle_copy, k1)
    res = edge("inspect", "--bundle", str(bundle_copy), "--trust-key", str(pub1), "--require-signature")
    assert res.exit_code == 0 and f"signed by key {id1}" in res.output
    res = edge("inspect", "--bundle", str(bundle_copy), "--trust-key", str(pub2))
    assert res.exit_code == 2 and f"signed by key {id1}, which --trust-key does not list" in res.output
    event = '{"packet_size": 60, "port": 8081, "protocol": "tcp", "bytes_sent": 40}'
    res = edge("check", "--bundle", str(bundle_copy), "--trust-key", str(pub2), event)
    assert res.exit_code == 2 and "does not list" in res.output
    res = edge("check", "--bundle", str(bundle_copy), "--trust-key", str(pub1), "--require-signature", event)
    assert res.exit_code in (0, 1), res.output  # signed by a trusted key: scored
