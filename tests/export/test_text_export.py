"""Text features end to end: jenga-train on generated DNS-like names, jenga-export into a
verified bundle, onnxruntime on text_bytes/text_lengths, and the parity edge cases.

One experiment holds three sources with a trunk each (model.trunk: per_source): `dns`
(the name only; DGA vs benign plus the DGA family, multitask on one trunk), `mix` (the
name and a numeric column in one schema) and `flows` (tabular only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import yaml
from click.testing import CliRunner

from export.bundle_writer import ExportOptions, export_bundle
from export.cli import main as export_cli
from jenga_edge.bundle import verify_bundle
from jenga_edge.contract.schema import TEXT_SCHEMA_VERSION, FeatureSchema
from tests.conftest import base_config
from tests.text_data import write_names
from trainer.cli import main as train_cli
from trainer.config import config_from_dict
from trainer.run import run_experiment

pytestmark = pytest.mark.slow  # trains models

TEXT = {"domain": {"max_bytes": 24, "normalize": "dns", "truncate": "tail"}}
DGA_LABEL = {"column": "label", "positive_labels": ["dga"]}


def tasks() -> list[dict]:
    return [
        {"name": "dga", "type": "anomaly_detection", "source": "dns", "label": DGA_LABEL},
        {
            "name": "family",
            "type": "classification",
            "source": "dns",
            "label": {"column": "family", "unmapped": "drop"},
        },
        {"name": "dga_mix", "type": "anomaly_detection", "source": "mix", "label": DGA_LABEL},
        {"name": "flows", "type": "anomaly_detection", "source": "flows", "label": DGA_LABEL},
    ]


def sources(path: Path) -> dict:
    return {
        "dns": {"path": str(path), "features": ["domain"], "kinds": {"domain": "text"}, "text": TEXT},
        "mix": {
            "path": str(path),
            "features": ["domain", "sni", "qlen"],
            "kinds": {"domain": "text", "sni": "text"},
            "text": {**TEXT, "sni": {"max_bytes": 16}},  # two text features of different widths
        },
        "flows": {"path": str(path), "features": ["qlen"]},
    }


def run_cli(main, *args) -> str:
    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def text_bundle(tmp_path_factory):
    """Trained through `jenga-train --config` and exported through `jenga-export`."""
    d = tmp_path_factory.mktemp("text")
    data = write_names(d / "names.jsonl", 400, seed=3)
    raw = base_config(sources(data), tasks(), d / "run", epochs=3, batch_size=64)
    raw["model"].update({"trunk": "per_source", "hidden_sizes": [16], "text": {"channels": 8, "widths": [2, 3]}})
    (d / "exp.yaml").write_text(yaml.safe_dump(raw))
    run_cli(train_cli, "--config", d / "exp.yaml")
    run_cli(export_cli, "--model", d / "run" / "best_model", "-o", d / "bundle")
    return d


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def feed(schema: FeatureSchema, rows: list[dict], trim: bool = False) -> dict:
    num, cat = schema.vectorize(rows)
    text, lengths = schema.vectorize_text(rows)
    if trim:
        text = np.ascontiguousarray(text[:, :, : max(1, int(lengths.max()))])
    return {"numeric": num, "categorical": cat, "text_bytes": text, "text_lengths": lengths}


def test_text_bundle_verifies_with_text_inputs_from_input_specs(text_bundle):
    bundle = verify_bundle(text_bundle / "bundle")
    manifest = bundle.manifest
    assert manifest.format_version == 5
    assert [t.name for t in manifest.tasks] == ["dga", "family", "dga_mix", "flows"]
    by_name = {t.name: t for t in manifest.tasks}
    dga, flows = by_name["dga"], by_name["flows"]
    assert dga.schema.version == TEXT_SCHEMA_VERSION and flows.schema.version == 2  # no text: as before
    assert [(i.name, i.dtype, i.shape) for i in dga.inputs] == [
        ("numeric", "float32", ["batch", 0]),
        ("categorical", "int64", ["batch", 0]),
        ("text_bytes", "uint8", ["batch", 1, "bytes"]),
        ("text_lengths", "int64", ["batch", 1]),
    ]
    assert [i.name for i in flows.inputs] == ["numeric", "categorical"]
    assert [i.shape for i in by_name["dga_mix"].inputs] == [
        ["batch", 1],
        ["batch", 0],
        ["batch", 2, "bytes"],
        ["batch", 2],
    ]
    assert by_name["dga_mix"].schema.text_width == 24
    assert [m.file for m in manifest.merged] == ["merged-dns.onnx"]
    graph = session(text_bundle / "bundle" / "dga.onnx")
    assert [(i.name, i.shape) for i in graph.get_inputs()][2:] == [
        ("text_bytes", ["batch", 1, "bytes"]),
        ("text_lengths", ["batch", 1]),
    ]


def test_the_graphs_learn_and_score_names_on_text_bytes(text_bundle):
    manifest = verify_bundle(text_bundle / "bundle").manifest
    dga = next(t for t in manifest.tasks if t.name == "dga")
    rows = [{"domain": "xkq9zt4vbn7w.com"}, {"domain": "mailshop.com"}, {"domain": "0f3a9c2be71d44.net"}]
    (scores,) = session(text_bundle / "bundle" / "dga.onnx").run(["score"], feed(dga.schema, rows, trim=True))
    assert scores.shape == (3,) and scores[0] > scores[1] and scores[2] > scores[1]
    assert dga.metrics["roc_auc"] > 0.9
    mix = next(t for t in manifest.tasks if t.name == "dga_mix")
    mixed = [{**r, "qlen": float(len(r["domain"])), "sni": "TLS." + r["domain"]} for r in rows]
    (mscores,) = session(text_bundle / "bundle" / "dga_mix.onnx").run(["score"], feed(mix.schema, mixed))
    assert mscores.shape == (3,)


def test_parity_covers_the_text_edge_cases_padded_and_trimmed(text_bundle):
    manifest = json.loads((text_bundle / "bundle" / "manifest.json").read_text())
    for task in manifest["tasks"]:
        cases = task["parity"]["cases"]
        if task["name"] == "flows":
            assert "text_edge_values" not in cases
            continue
        assert {"text_edge_values", "text_edge_values_trimmed", "text_all_empty", "validation"} <= set(cases)
        assert all(v <= 1e-5 for per_output in cases.values() for v in per_output.values()), task["name"]
        assert all(v <= 1e-5 for v in task["parity"]["trimmed_vs_padded"].values())
    merged = manifest["merged"][0]["parity"]
    assert "text_edge_values" in merged["cases"] and max(merged["trimmed_vs_padded"].values()) <= 1e-5
    assert max(merged["vs_task_graphs"].values()) <= 1e-5


def test_normalized_names_score_alike_and_trimming_changes_nothing(text_bundle):
    manifest = verify_bundle(text_bundle / "bundle").manifest
    schema = manifest.tasks[0].schema
    rows = [
        {"domain": "MAIL.Example.COM."},
        {"domain": "mail.example.com"},
        {"domain": ""},
        {"domain": "ü" * 30},  # 60 bytes: the tail's 24 kept
        {"domain": "x" + "ü" * 30},  # a cut inside a character
        {"domain": "a\x00b"},
        {},  # missing: the empty text
    ]
    graph = session(text_bundle / "bundle" / "merged-dns.onnx")
    padded = graph.run(None, feed(schema, rows))
    trimmed = graph.run(None, feed(schema, rows, trim=True))
    for a, b in zip(padded, trimmed):
        np.testing.assert_allclose(a, b, atol=1e-5)
    score = padded[0]
    assert score[0] == score[1] and score[2] == score[6]


def test_evaluate_and_predict_vectorize_text(text_bundle):
    model = text_bundle / "run" / "best_model"
    data = write_names(text_bundle / "test.jsonl", 60, seed=11)
    metrics = json.loads(run_cli(train_cli, "evaluate", "--model", model, "--data", data, "--json"))
    assert {"dga", "family", "dga_mix", "flows"} <= set(metrics)
    rows = [json.loads(x) for x in run_cli(train_cli, "predict", "--model", model, "--data", data).splitlines()]
    assert len(rows) == 60 and {"dga", "family", "dga_mix"} <= set(rows[0])


def test_transformer_backbone_exports_with_parity(tmp_path):
    data = write_names(tmp_path / "names.jsonl", 200, seed=4)
    src = {"dns": sources(data)["dns"]}
    raw = base_config(src, tasks()[:1], tmp_path / "run", epochs=1, batch_size=64)
    raw["model"].update({"hidden_sizes": [16], "text": {"backbone": "transformer", "d_model": 16, "layers": 1}})
    run = run_experiment(config_from_dict(raw), tmp_path / "run", out=None)
    manifest = export_bundle(run.model_dir, tmp_path / "bundle", ExportOptions(), log=lambda s: None)
    verify_bundle(tmp_path / "bundle")
    assert manifest.tasks[0].parity["cases"]["text_edge_values"]["score"] <= 1e-5
    assert manifest.tasks[0].parity["trimmed_vs_padded"]["score"] <= 1e-5
