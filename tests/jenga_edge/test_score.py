"""Tests for jenga_edge/score.py: onnxruntime sessions for a verified bundle, micro-batch scoring."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import msgspec
import numpy as np
import onnxruntime as ort
import pytest
from onnx.helper import make_node as onnx_node

from jenga_edge.bundle import Bundle, verify_bundle
from jenga_edge.contract.bundle_format import TensorSpec
from jenga_edge.contract.errors import BundleError, ConfigError
from jenga_edge.contract.schema import OOV_TOKEN, Feature, FeatureSchema
from jenga_edge.decode import EventDecoder
from jenga_edge.rules import RuleConfig, RuleEngine
from jenga_edge.score import RuntimeConfig, Scorer, select_tasks
from trainer.synthetic import generate

LABEL_COLUMNS = ("label", "attack_type", "src_ip", "dst_ip")


@pytest.fixture(scope="module")
def bundle(network_bundle) -> Bundle:
    return verify_bundle(network_bundle[0])


@pytest.fixture(scope="module")
def scorer(bundle) -> Scorer:
    return Scorer(bundle)


@pytest.fixture(scope="module")
def events(bundle):
    """500 generated events as the graph's inputs, plus a few rows with missing and unseen values."""
    rows = [{k: v for k, v in r.items() if k not in LABEL_COLUMNS} for r in generate("network", 500, seed=21)]
    rows[0] = {}
    rows[1] = {"port": 65000, "protocol": "sctp"}
    rows[2] = {"packet_size": 1e30, "bytes_sent": -1e30, "duration": 3e38}
    dec = EventDecoder(bundle.tasks["threat"].schema)
    batch = dec.decode([json.dumps(r).encode() for r in rows])
    assert batch.rejects == [] and len(batch) == 500
    return batch.num, batch.cat


def test_merged_graph_is_used_when_it_covers_the_tasks(bundle, scorer):
    assert scorer.tasks == ["threat", "attack_type"]
    assert scorer.merged is True and len(scorer.plan) == 1
    assert scorer.schema == bundle.tasks["threat"].schema
    only = Scorer(bundle, ["attack_type"])
    # One task: its own graph is cheaper than the merged one computing both.
    assert only.merged is False and only.tasks == ["attack_type"] and len(only.plan) == 1


def test_per_task_graphs_when_merged_is_off(bundle):
    s = Scorer(bundle, cfg=RuntimeConfig(use_merged_graph=False))
    assert s.merged is False and len(s.plan) == 2


def test_merged_and_per_task_graphs_agree(bundle, scorer, events):
    num, cat = events
    a = scorer.score(num, cat)
    b = Scorer(bundle, cfg=RuntimeConfig(use_merged_graph=False)).score(num, cat)
    assert set(a.score) == set(b.score) == {"threat", "attack_type"}
    assert set(a.label) == set(b.label) == {"attack_type"}
    for t in ("threat", "attack_type"):
        assert a.score[t].shape == (len(num),) and a.score[t].dtype == np.float32
        np.testing.assert_allclose(a.score[t], b.score[t], atol=1e-6, rtol=0)
    np.testing.assert_array_equal(a.label["attack_type"], b.label["attack_type"])
    assert ((a.score["threat"] >= 0) & (a.score["threat"] <= 1)).all()


def test_one_task_scorer_matches_the_full_one(bundle, scorer, events):
    num, cat = events
    one = Scorer(bundle, ["threat"], RuntimeConfig(use_merged_graph=False)).score(num, cat)
    assert set(one.score) == {"threat"} and one.label == {}
    np.testing.assert_allclose(one.score["threat"], scorer.score(num, cat).score["threat"], atol=1e-6, rtol=0)


def test_multiclass_score_is_max_probability_and_label_is_argmax(bundle, scorer, events):
    num, cat = events
    got = scorer.score(num, cat)
    entry = bundle.tasks["attack_type"]
    sess = ort.InferenceSession(bundle.graph(entry.file), providers=["CPUExecutionProvider"])
    names = [o.name for o in entry.outputs]
    probs = dict(zip(names, sess.run(names, {"numeric": num, "categorical": cat})))["probabilities"]
    assert probs.shape == (len(num), len(entry.labels))
    np.testing.assert_allclose(got.score["attack_type"], probs.max(axis=1), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(got.label["attack_type"], probs.argmax(axis=1))
    assert got.label["attack_type"].dtype == np.int64
    assert len(set(got.label["attack_type"].tolist())) > 1  # the generated mix is not one class


def test_batch_composition_does_not_change_a_score(scorer, events):
    num, cat = events
    whole = scorer.score(num, cat).score["threat"]
    singles = np.concatenate([scorer.score(num[i : i + 1], cat[i : i + 1]).score["threat"] for i in range(20)])
    np.testing.assert_allclose(singles, whole[:20], atol=1e-6, rtol=0)


def test_empty_batch(scorer, bundle):
    schema = bundle.tasks["threat"].schema
    s = scorer.score(np.empty((0, len(schema.numeric)), np.float32), np.empty((0, len(schema.categorical)), np.int64))
    assert set(s.score) == {"threat", "attack_type"}
    assert all(v.shape == (0,) for v in s.score.values())


def test_empty_batch_has_labels_and_rules_survive_it(scorer, bundle):
    schema = bundle.tasks["threat"].schema
    dec = EventDecoder(schema, key_fields=["src_ip"])
    batch = dec.decode([b"{not json", b"[]"])  # every line rejected
    s = scorer.score(batch.num, batch.cat)
    assert s.label["attack_type"].shape == (0,)
    tasks = {t: bundle.tasks[t] for t in scorer.tasks}
    eng = RuleEngine([RuleConfig(rule="exfil", task="attack_type", labels=["exfiltration"])], tasks)
    assert eng.evaluate(batch, s) == []


def test_unknown_task_is_a_config_error(bundle):
    with pytest.raises(ConfigError, match=r"^agent.tasks: nope not in bundle .* \(it has: threat, attack_type\)"):
        Scorer(bundle, ["threat", "nope"])
    with pytest.raises(ConfigError, match="nope"):
        select_tasks(bundle, ["nope"])


def test_select_tasks_defaults_to_every_task(bundle):
    assert [e.name for e in select_tasks(bundle, None)] == ["threat", "attack_type"]
    assert [e.name for e in select_tasks(bundle, [])] == ["threat", "attack_type"]
    assert [e.name for e in select_tasks(bundle, ["attack_type", "threat"])] == ["attack_type", "threat"]


def fake_two_schema_bundle(bundle: Bundle) -> Bundle:
    other = FeatureSchema(
        (Feature("amount", "numeric"), Feature("merchant", "categorical", categories=(OOV_TOKEN, "fuel")))
    )
    fraud = msgspec.structs.replace(
        bundle.tasks["threat"],
        name="fraud",
        source="card",
        schema=other,
        schema_sha256=other.sha256,
        file="fraud.onnx",
        inputs=[
            TensorSpec(name="numeric", dtype="float32", shape=["batch", 1], features=["amount"]),
            TensorSpec(name="categorical", dtype="int64", shape=["batch", 1], features=["merchant"]),
        ],
    )
    return Bundle(bundle.path, bundle.manifest, {**bundle.tasks, "fraud": fraud}, bundle.merged, bundle.graphs)


def test_tasks_from_two_schemas_are_a_config_error(bundle):
    fake = fake_two_schema_bundle(bundle)
    with pytest.raises(ConfigError, match=r"share one feature schema; threat \(net\), fraud \(card\) do not"):
        select_tasks(fake, ["threat", "fraud"])
    with pytest.raises(ConfigError, match="share one feature schema"):
        Scorer(fake)  # every task by default: two schemas
    assert Scorer(fake, ["threat", "attack_type"]).merged  # one schema: fine


def test_session_options_are_honoured(bundle):
    s = Scorer(bundle)
    opts = s.plan[0][0].get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    # the memory pattern is off by default (the agent's shapes vary), the arena on
    assert not opts.enable_mem_pattern and opts.enable_cpu_mem_arena
    s2 = Scorer(
        bundle,
        cfg=RuntimeConfig(
            intra_op_threads=2,
            graph_optimization="disable",
            use_merged_graph=False,
            memory_pattern=True,
            cpu_arena=False,
        ),
    )
    for sess, _, _ in s2.plan:
        o = sess.get_session_options()
        assert o.intra_op_num_threads == 2
        assert o.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        assert o.enable_mem_pattern and not o.enable_cpu_mem_arena
        assert sess.get_providers() == ["CPUExecutionProvider"]
    assert s2.text_run_events == 0  # no text features: a batch is never sliced


def test_an_unloadable_graph_is_a_bundle_error(bundle, tmp_path):
    fake = Bundle(tmp_path, bundle.manifest, {"threat": bundle.tasks["threat"]}, (), {"threat.onnx": b"not a graph"})
    with pytest.raises(BundleError, match=r"onnxruntime could not load the bundle's graph threat\.onnx"):
        Scorer(fake)


def test_the_setting_that_picked_the_tasks_is_named(bundle):
    fake = fake_two_schema_bundle(bundle)
    with pytest.raises(ConfigError, match=r"^rules\[\]\.task: an agent scores one event stream"):
        Scorer(fake, ["threat", "fraud"], where="rules[].task")


def _bundle_with_threat_graph(bundle: Bundle, tmp_path, node) -> Bundle:
    """A copy of the bundle whose threat.onnx is replaced by a one-node graph (not re-verified:
    the scorer's own trial is under test)."""
    import shutil

    import onnx
    from onnx import TensorProto, helper

    d = tmp_path / "bundle"
    shutil.copytree(bundle.path, d)
    entry = bundle.tasks["threat"]
    n_num, n_cat = len(entry.schema.numeric), len(entry.schema.categorical)
    graph = helper.make_graph(
        node,
        "bad",
        [
            helper.make_tensor_value_info("numeric", TensorProto.FLOAT, ["batch", n_num]),
            helper.make_tensor_value_info("categorical", TensorProto.INT64, ["batch", n_cat]),
        ],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, None)],
        [
            helper.make_tensor("shape", TensorProto.INT64, [3], [2, 3, 5]),
            helper.make_tensor("flat", TensorProto.INT64, [1], [-1]),
            helper.make_tensor("seven", TensorProto.INT64, [], [7]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(d / entry.file))
    return Bundle(d, bundle.manifest, bundle.tasks, bundle.merged, {entry.file: (d / entry.file).read_bytes()})


@pytest.mark.parametrize(
    "node,text",
    [
        # what the graph says it gives does not fit the manifest: refused before anything runs
        ([onnx_node("Identity", ["numeric"], ["score"])], r"output 'score' has shape \[batch, 5\]; the manifest says"),
        ([onnx_node("Reshape", ["numeric", "shape"], ["score"])], r"output 'score' has shape \[2, 3, 5\]"),
        # it fits on paper, but the trial event shows otherwise
        (
            [onnx_node("Reshape", ["numeric", "flat"], ["score"])],
            "cannot score one event: threat: not one value per event",
        ),
        ([onnx_node("Gather", ["numeric", "seven"], ["score"], axis=1)], r"cannot score one event: .*Gather"),
    ],
)
def test_graphs_that_load_but_cannot_score_are_refused_before_the_agent_starts(bundle, tmp_path, node, text):
    bad = _bundle_with_threat_graph(bundle, tmp_path, node)
    with pytest.raises(BundleError, match=text):
        Scorer(bad, ["threat"], RuntimeConfig(use_merged_graph=False))


def test_onnxruntime_telemetry_is_off_unless_the_operator_set_it(tmp_path):
    # onnxruntime >= 1.29 uploads usage telemetry and writes a device id and an event cache
    # under ~/.cache/Microsoft unless ORT_DISABLE_TELEMETRY is set before it is imported.
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    code = "import os, jenga_edge.ort_loader as o; o.load(); print(os.environ['ORT_DISABLE_TELEMETRY'])"
    for home, given, want in ((tmp_path / "a", None, "1"), (tmp_path / "b", "0", "0")):
        home.mkdir()
        run_env = {**env, "HOME": str(home), **({"ORT_DISABLE_TELEMETRY": given} if given else {})}
        out = subprocess.run([sys.executable, "-c", code], env=run_env, capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == want, out.stderr
    assert not (tmp_path / "a" / ".cache").exists()


def test_onnxruntime_is_imported_only_through_the_loader():
    # The telemetry setting holds only if every import goes through ort_loader.load()
    # (an `if TYPE_CHECKING:` block imports nothing at run time).
    from pathlib import Path

    import jenga_edge

    root = Path(jenga_edge.__file__).parent
    found = [str(p.relative_to(root)) for p in root.rglob("*.py") if p.name != "ort_loader.py" and _imports_ort(p)]
    assert found == []


def _imports_ort(path):
    import ast

    def walk(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test) == "TYPE_CHECKING":
                continue
            if isinstance(child, ast.Import) and any(a.name.split(".")[0] == "onnxruntime" for a in child.names):
                return True
            if isinstance(child, ast.ImportFrom) and (child.module or "").split(".")[0] == "onnxruntime":
                return True
            if walk(child):
                return True
        return False

    return walk(ast.parse(path.read_text()))
