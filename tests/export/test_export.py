import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from export import bundle_writer
from export.bundle_writer import ExportOptions, ParityError, export_bundle
from export.cli import main as export_cli
from jenga_edge.bundle import verify_bundle
from jenga_edge.contract.errors import BundleError, ConfigError
from tests.conftest import base_config, net_source, network_tasks
from trainer import checkpoint
from trainer.config import config_from_dict
from trainer.readers import read_rows
from trainer.run import run_experiment

REPO = Path(__file__).resolve().parents[2]


def session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_bundle_lists_every_task_and_the_merged_graph(network_bundle):
    out, manifest = network_bundle
    assert [t.name for t in manifest.tasks] == ["threat", "attack_type"]
    assert [m.file for m in manifest.merged] == ["merged-net.onnx"]
    assert manifest.requires.opset == 18
    b = verify_bundle(out)
    assert set(b.tasks) == {"threat", "attack_type"}
    for name in ["threat.onnx", "attack_type.onnx", "merged-net.onnx"]:
        model = onnx.load(str(out / name))
        onnx.checker.check_model(model, full_check=True)
        assert model.producer_name == "jenga-export"
        assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [18]


def test_graph_inputs_and_outputs_are_stable_with_a_symbolic_batch(network_bundle):
    out, manifest = network_bundle
    threat = session(out / "threat.onnx")
    assert [i.name for i in threat.get_inputs()] == ["numeric", "categorical"]
    assert [o.name for o in threat.get_outputs()] == ["score"]
    assert threat.get_inputs()[0].shape[0] == "batch"
    kinds = session(out / "attack_type.onnx")
    assert [o.name for o in kinds.get_outputs()] == ["probabilities", "label"]
    task = manifest.tasks[1]
    assert task.outputs[0].shape == ["batch", len(task.labels)]
    assert [(o.name, o.role, o.dtype) for o in task.outputs] == [
        ("probabilities", "probabilities", "float32"),
        ("label", "label", "int64"),
    ]
    assert [(o.name, o.role) for o in manifest.tasks[0].outputs] == [("score", "score")]
    merged = manifest.merged[0].outputs
    assert [(o.name, o.role) for o in merged["attack_type"]] == [
        ("attack_type.probabilities", "probabilities"),
        ("attack_type.label", "label"),
    ]


def test_parity_figures_are_within_tolerance_for_every_case(network_bundle):
    _, manifest = network_bundle
    for t in manifest.tasks:
        cases = t.parity["cases"]
        assert set(cases) == {
            "validation",
            "missing_values",
            "unseen_categories",
            "extreme_magnitudes",
            "batch_1",
            "batch_1000",
        }
        for per_output in cases.values():
            assert all(0 <= v <= 1e-5 for v in per_output.values()), (t.name, per_output)
        assert t.parity["rows"].startswith("validation split of")


def test_graphs_take_onnxruntimes_fast_kernels(network_bundle, tmp_path):
    """Each GELU is one fused Gelu kernel once onnxruntime optimizes the graph (torch's
    own decomposition matches no fusion pattern), and no Gather copies single elements
    along the numeric columns (axis 1): both cost the agent time per event."""
    out, _ = network_bundle
    for name in ["threat.onnx", "merged-net.onnx"]:
        graph = onnx.load(str(out / name)).graph
        axis1 = [n.name for n in graph.node if n.op_type == "Gather" and any(a.i == 1 for a in n.attribute)]
        assert axis1 == [], name
        opts = ort.SessionOptions()
        opts.optimized_model_filepath = str(tmp_path / f"opt-{name}")
        ort.InferenceSession(str(out / name), opts, providers=["CPUExecutionProvider"])
        ops = [n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node]
        assert "Erf" not in ops and ops.count("Gelu") == 3, (name, ops)


def test_metadata_round_trips_through_onnxruntime(network_bundle):
    out, manifest = network_bundle
    t = manifest.tasks[0]
    meta = session(out / t.file).get_modelmeta()
    props = meta.custom_metadata_map
    assert meta.producer_name == "jenga-export"
    assert props["jenga.task"] == "threat" and props["jenga.task_type"] == "anomaly_detection"
    assert json.loads(props["jenga.feature_schema"]) == t.schema.to_json()
    assert props["jenga.feature_schema_sha256"] == t.schema_sha256
    assert json.loads(props["jenga.labels"]) == ["normal", "threat"]
    assert json.loads(props["jenga.default_threshold"]) == pytest.approx(t.threshold)
    assert float(props["jenga.parity_max_abs_diff"]) <= 1e-5


def _raw_rows():
    return [
        {
            "packet_size": 500,
            "port": 443,
            "protocol": "tcp",
            "duration": 1.2,
            "request_count": 3,
            "bytes_sent": 900,
            "bytes_received": 12000,
        },
        {
            "packet_size": 64,
            "port": 65000,
            "protocol": "sctp",
            "request_count": 9000,  # unseen port + protocol
            "bytes_sent": 64,
            "bytes_received": 0,
        },  # duration missing
        {"port": 22},  # nearly everything missing
    ]


def test_missing_values_and_unseen_categories_score_the_same_in_torch_and_onnx(network_bundle, trained_network):
    out, _manifest = network_bundle
    loaded = checkpoint.load(trained_network.model_dir)
    schema = loaded.schemas["net"]
    num, cat = schema.vectorize(_raw_rows(), strict=False)
    assert np.isnan(num).any() and (cat == 0).any()
    with torch.no_grad():
        ref = loaded.model("threat", features={"numeric": torch.from_numpy(num), "categorical": torch.from_numpy(cat)})[
            "scores"
        ].numpy()
    got = session(out / "threat.onnx").run(["score"], {"numeric": num, "categorical": cat})[0]
    assert np.abs(ref - got).max() <= 1e-5
    assert np.isfinite(got).all()


def test_merged_graph_matches_the_per_task_graphs(network_bundle, trained_network):
    out, manifest = network_bundle
    src = trained_network.trainer.sources["net"]
    feed = {"numeric": src.num[:500], "categorical": src.cat[:500]}
    merged = session(out / "merged-net.onnx")
    names = [o.name for o in merged.get_outputs()]
    assert names == ["threat.score", "attack_type.probabilities", "attack_type.label"]
    got = dict(zip(names, merged.run(None, feed)))
    assert np.abs(got["threat.score"] - session(out / "threat.onnx").run(None, feed)[0]).max() <= 1e-6
    probs, label = session(out / "attack_type.onnx").run(None, feed)
    assert np.abs(got["attack_type.probabilities"] - probs).max() <= 1e-6
    assert np.array_equal(got["attack_type.label"], label)
    assert max(manifest.merged[0].parity["vs_task_graphs"].values()) <= 1e-6


def test_three_schema_model_exports_one_graph_per_schema(data_dir, tmp_path):
    sources = {
        "net": {"path": str(data_dir / "network.jsonl"), "ignore": ["src_ip", "dst_ip", "attack_type"]},
        "tx": {"path": str(data_dir / "fraud.jsonl")},
        "ops": {"path": str(data_dir / "aiops.jsonl"), "ignore": ["host"]},
    }  # no categoricals
    tasks = [
        {
            "name": "threat",
            "type": "anomaly_detection",
            "source": "net",
            "label": {"column": "label", "positive_labels": ["malicious"]},
        },
        {"name": "fraud", "type": "anomaly_detection", "source": "tx", "label": {"column": "label"}},
        {
            "name": "drift",
            "type": "anomaly_detection",
            "mode": "novelty",
            "source": "ops",
            "label": {"column": "label", "positive_labels": ["incident"]},
        },
    ]
    run = run_experiment(config_from_dict(base_config(sources, tasks, tmp_path, epochs=3)), tmp_path, out=None)
    manifest = export_bundle(run.model_dir, tmp_path / "bundle", ExportOptions(), log=lambda s: None)
    assert [t.name for t in manifest.tasks] == ["threat", "fraud", "drift"]
    assert manifest.merged == []  # no two tasks share a schema
    assert len({t.schema_sha256 for t in manifest.tasks}) == 3
    drift = next(t for t in manifest.tasks if t.name == "drift")
    assert drift.inputs[1].shape == ["batch", 0]
    s = session(tmp_path / "bundle" / "drift.onnx")
    n = drift.inputs[0].shape[1]
    score = s.run(None, {"numeric": np.full((2, n), np.nan, np.float32), "categorical": np.zeros((2, 0), np.int64)})[0]
    assert score.shape == (2,) and np.all((score >= 0) & (score <= 1))


def test_bad_requests_are_refused_before_writing(trained_network, tmp_path):
    with pytest.raises(ConfigError, match=r"unknown task.*nope.*threat, attack_type"):
        export_bundle(trained_network.model_dir, tmp_path / "a", ExportOptions(tasks=["nope"]), log=lambda s: None)
    with pytest.raises(ConfigError, match="--opset 9: unsupported"):
        export_bundle(trained_network.model_dir, tmp_path / "b", ExportOptions(opset=9), log=lambda s: None)
    with pytest.raises(BundleError, match="not a best_model directory"):
        export_bundle(tmp_path, tmp_path / "c", ExportOptions(), log=lambda s: None)
    assert not any((tmp_path / d).exists() for d in "abc")


def test_a_parity_failure_fails_the_export_and_writes_nothing(trained_network, tmp_path):
    with pytest.raises(ParityError, match=r"differs from torch.*> --atol 1e-12"):
        export_bundle(
            trained_network.model_dir,
            tmp_path / "p",
            ExportOptions(tasks=["attack_type"], atol=1e-12),
            log=lambda s: None,
        )
    assert not (tmp_path / "p").exists()
    assert not list(tmp_path.glob(".p.tmp-*"))


def test_existing_bundle_needs_force(network_bundle, trained_network, tmp_path):
    target = tmp_path / "x"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    with pytest.raises(BundleError, match="--force"):
        export_bundle(trained_network.model_dir, target, ExportOptions(tasks=["threat"]), log=lambda s: None)
    export_bundle(trained_network.model_dir, target, ExportOptions(tasks=["threat"], force=True), log=lambda s: None)
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json", "threat.onnx"]


def run_cli(*args) -> SimpleNamespace:
    res = CliRunner().invoke(export_cli, [str(a) for a in args], catch_exceptions=False)
    return SimpleNamespace(returncode=res.exit_code, stdout=res.stdout, stderr=res.stderr)


def test_cli_exports_and_prints_a_summary_table(trained_network, tmp_path):
    proc = run_cli("--model", trained_network.model_dir, "-o", tmp_path / "b", "--tasks", "threat")
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[0].split()
    assert header == ["task", "inputs", "outputs", "size", "max", "abs", "diff"]
    assert proc.stdout.splitlines()[1].startswith("threat")
    assert "written to" in proc.stderr


@pytest.mark.parametrize(
    "args,code,text",
    [
        (["--tasks", "nope"], 2, "unknown task"),
        (["--atol", "1e-12", "--tasks", "attack_type"], 1, "differs from torch"),
    ],
)
def test_cli_errors_are_one_line_with_exit_codes(trained_network, tmp_path, args, code, text):
    proc = run_cli("--model", trained_network.model_dir, "-o", tmp_path / "b", *args)
    assert proc.returncode == code
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and text in last
    assert not (tmp_path / "b").exists()  # nothing is written on failure


def test_cli_refuses_an_opset_it_cannot_write(trained_network, tmp_path):
    proc = run_cli("--model", trained_network.model_dir, "-o", tmp_path / "b", "--opset", "99")
    assert proc.returncode == 2 and "'--opset': 99 is not in the range 18<=x<=21" in proc.stderr


def test_parity_rows_of_another_schema_are_refused(trained_network, data_dir, tmp_path):
    proc = run_cli("--model", trained_network.model_dir, "-o", tmp_path / "b", "--data", data_dir / "fraud.jsonl")
    assert proc.returncode == 2
    assert "--data" in proc.stderr and "lack" in proc.stderr and "features of source 'net'" in proc.stderr
    assert not (tmp_path / "b").exists()


def test_parity_rows_missing_a_few_features_are_named(trained_network, data_dir, tmp_path):
    rows = [json.loads(x) for x in (data_dir / "network.jsonl").read_text().splitlines()[:300]]
    for r in rows:
        r.pop("duration", None)
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_cli(
        "--model",
        trained_network.model_dir,
        "-o",
        tmp_path / "b",
        "--tasks",
        "threat",
        "--data",
        tmp_path / "rows.jsonl",
    )
    assert proc.returncode == 0, proc.stderr
    assert "no row has duration: the parity check scores them as missing" in proc.stderr


def test_a_periodic_ensemble_with_a_novelty_head_exports_in_one_graph_with_parity(data_dir, tmp_path):
    """`periodic` and `model.ensemble: 3` train, pass the parity gate, and the agent loads
    the bundle; the members differ, and the graph's score is their mean. (Multiclass
    ensembles: tests/trainer/test_model.py; each exported graph here costs seconds.)"""
    tasks = [
        *network_tasks(multitask=False),
        {
            "name": "odd",
            "type": "anomaly_detection",
            "mode": "novelty",
            "source": "net",
            "label": {"column": "label", "positive_labels": ["malicious"]},
        },
    ]
    source = {**net_source(data_dir / "network.jsonl"), "encoding": "periodic", "limit": 800}
    raw = base_config({"net": source}, tasks, tmp_path, epochs=1)
    raw["model"].update(ensemble=3, periodic={"frequencies": 4, "width": 4})
    run = run_experiment(config_from_dict(raw), tmp_path / "run", out=None)
    manifest = export_bundle(run.model_dir, tmp_path / "bundle", ExportOptions(), log=lambda s: None)
    assert {f.encoding for f in manifest.tasks[0].schema.features if f.kind == "numeric"} == {"periodic"}
    for t in manifest.tasks:
        assert max(v for case in t.parity["cases"].values() for v in case.values()) <= 1e-5, t.name
    assert set(verify_bundle(tmp_path / "bundle").tasks) == {"threat", "odd"}
    model = checkpoint.load(run.model_dir).model
    src = run.trainer.sources["net"]
    num, cat = torch.as_tensor(src.num[:64]), torch.as_tensor(src.cat[:64])
    with torch.no_grad():
        member = torch.sigmoid(model.heads["threat"](model.shared("net", num, cat))).squeeze(2)
    assert member.shape == (64, 3) and (member[:, 0] - member[:, 1]).abs().max() > 1e-3
    got = session(tmp_path / "bundle" / "threat.onnx").run(
        ["score"], {"numeric": num.numpy(), "categorical": cat.numpy()}
    )
    assert np.abs(got[0] - member.mean(dim=1).numpy()).max() <= 1e-5


def test_a_source_of_several_files_is_recorded_and_its_parity_rows_read_from_all(data_dir, tmp_path, monkeypatch):
    """A source whose `path` is a list: the checkpoint keeps every file, in order, and the
    export's parity rows are the validation split of all of them, as training made it. A
    checkpoint written before lists (one path, a str) still exports from its file."""
    files = [data_dir / "network.jsonl", data_dir / "network_test.jsonl"]
    src = {**net_source(files[0]), "path": [str(f) for f in files]}
    cfg = config_from_dict(base_config({"net": src}, network_tasks(multitask=False), tmp_path / "run", epochs=2))
    run = run_experiment(cfg, tmp_path / "run", out=None)
    meta_path = Path(run.model_dir) / checkpoint.META_FILE
    meta = json.loads(meta_path.read_text())
    assert meta["data_paths"] == {"net": [str(f.resolve()) for f in files]}
    read = []  # what the parity check reads: every file, as training did
    monkeypatch.setattr(
        bundle_writer, "read_rows", lambda paths, *a, **k: read.append(paths) or read_rows(paths, *a, **k)
    )
    manifest = export_bundle(run.model_dir, tmp_path / "b", ExportOptions(), log=lambda s: None)
    assert read == [[str(f.resolve()) for f in files]]
    assert manifest.tasks[0].parity["rows"] == f"validation split of {files[0].resolve()}, {files[1].resolve()}"
    meta["data_paths"] = {"net": str(files[0].resolve())}
    meta_path.write_text(json.dumps(meta))
    manifest = export_bundle(run.model_dir, tmp_path / "c", ExportOptions(), log=lambda s: None)
    assert manifest.tasks[0].parity["rows"] == f"validation split of {files[0].resolve()}"
