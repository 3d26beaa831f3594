"""Tests for trainer/config.py: loading experiment files and their error messages."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from jenga_edge.contract.errors import ConfigError
from trainer.config import (
    ExperimentConfig,
    TargetFpr,
    config_as_yaml_dict,
    config_from_dict,
    load_config,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "configs"

BASE = {
    "project_name": "p",
    "sources": {"net": {"path": "data/net.jsonl"}},
    "tasks": [
        {
            "name": "threat",
            "type": "anomaly_detection",
            "source": "net",
            "label": {"column": "label", "positive_labels": ["bad"]},
        },
        {"name": "kind", "type": "classification", "source": "net", "label": {"column": "kind", "classes": ["a", "b"]}},
    ],
}


def raw(**top):
    data = copy.deepcopy(BASE)
    data.update(top)
    return data


@pytest.fixture
def workdir(tmp_path):
    """tmp_path/data/net.jsonl and a writer for tmp_path/conf/NAME.yaml (path ../data/...)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "net.jsonl").write_text(json.dumps({"x": 1, "label": "ok", "kind": "a"}) + "\n")
    (tmp_path / "conf").mkdir()

    def write(data=None, text=None, name="exp.yaml"):
        p = tmp_path / "conf" / name
        if text is None:
            data = copy.deepcopy(BASE if data is None else data)
            for s in data.get("sources", {}).values():
                if isinstance(s, dict) and s.get("path") == "data/net.jsonl":
                    s["path"] = "../data/net.jsonl"
            text = yaml.safe_dump(data, sort_keys=False)
        p.write_text(text)
        return p

    write.root = tmp_path
    return write


def load_err(data, **kw) -> str:
    with pytest.raises(ConfigError) as exc:
        config_from_dict(data, source="exp.yaml", check_files=False, **kw)
    return str(exc.value)


# --- valid files ------------------------------------------------------------------------


def test_load_valid_config(workdir):
    cfg = load_config(workdir())
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.project_name == "p"
    assert [t.name for t in cfg.tasks] == ["threat", "kind"]
    assert cfg.tasks[0].label.positive_labels == ["bad"]
    assert cfg.training.epochs == 30 and cfg.model.activation == "gelu"
    assert cfg.tasks[0].threshold_rule == "max_f1"


def test_relative_source_path_resolves_against_config_dir(workdir, tmp_path, monkeypatch):
    path = workdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(path)
    assert cfg.base_dir == str((tmp_path / "conf").resolve())
    assert cfg.source_paths("net")[0].resolve() == (tmp_path / "data" / "net.jsonl").resolve()
    assert cfg.source_paths("net")[0].is_file()


def test_relative_config_path_also_resolves(workdir, tmp_path, monkeypatch):
    workdir()
    monkeypatch.chdir(tmp_path)
    cfg = load_config(Path("conf") / "exp.yaml")
    assert cfg.source_paths("net")[0].resolve() == (tmp_path / "data" / "net.jsonl").resolve()


def test_absolute_source_path_is_kept(workdir):
    data = raw()
    abs_path = str((workdir.root / "data" / "net.jsonl").resolve())
    data["sources"]["net"]["path"] = abs_path
    cfg = load_config(workdir(data))
    assert cfg.source_paths("net") == [Path(abs_path)]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_example_configs_type_check(name):
    data = yaml.safe_load((EXAMPLES / name).read_text())
    cfg = config_from_dict(data, source=name, check_files=False)
    assert cfg.tasks and cfg.sources


def test_example_minimal_loads_with_its_data_file():
    cfg = load_config(EXAMPLES / "network_minimal.yaml")
    assert cfg.sources["flows"].kinds == {"port": "categorical"}
    assert cfg.source_paths("flows")[0].is_file()


def test_nsl_kdd_example_threshold_rules():
    data = yaml.safe_load((EXAMPLES / "nsl_kdd.yaml").read_text())
    cfg = config_from_dict(data, check_files=False)
    rules = {t.name: t.threshold_rule for t in cfg.tasks}
    assert rules["attack"] == "max_f1"
    assert isinstance(rules["novelty"], TargetFpr) and 0.0 < rules["novelty"].target_fpr < 1.0
    assert cfg.tasks[2].label.mapping["neptune"] == "DoS"
    assert cfg.tasks[4].combine == ["attack", "distance"] and rules["detector"] == TargetFpr(target_fpr=0.03)


def test_config_as_yaml_dict_round_trips():
    cfg = config_from_dict(raw(), check_files=False)
    data = config_as_yaml_dict(cfg)
    assert "base_dir" not in data
    again = config_from_dict(data, check_files=False)
    assert config_as_yaml_dict(again) == data


# --- file-level errors ------------------------------------------------------------------


def test_missing_config_file(tmp_path):
    p = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match=r"missing.yaml: config file not found"):
        load_config(p)


def test_invalid_yaml_has_line_number(workdir):
    p = workdir(text="project_name: p\nsources:\n  net: {path: x\ntasks: []\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert "invalid YAML" in msg and str(p) in msg
    assert "line 4" in msg


@pytest.mark.parametrize("text,found", [("", "NoneType"), ("- a\n- b\n", "list"), ("just text\n", "str")])
def test_top_level_must_be_mapping(workdir, text, found):
    p = workdir(text=text)
    with pytest.raises(ConfigError, match=f"expected a mapping at the top level, got {found}"):
        load_config(p)


def test_missing_data_file_names_source_path_key(workdir):
    data = raw()
    data["sources"]["net"]["path"] = "nothere.jsonl"
    p = workdir(data)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert "sources.net.path: data file not found" in msg
    assert "nothere.jsonl" in msg
    assert msg.startswith(str(p))


def test_errors_start_with_config_file_name(workdir):
    data = raw(trainig={"epochs": 3})
    p = workdir(data)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(exc.value).startswith(f"{p}: trainig: unknown key")


# --- unknown keys -----------------------------------------------------------------------


def test_unknown_top_level_key_suggests():
    msg = load_err(raw(trainig={"epochs": 3}))
    assert "trainig: unknown key (did you mean 'training'?)" in msg
    assert "expected one of: project_name, sources, tasks, model, training" in msg


def test_unknown_task_key_suggests():
    data = raw()
    data["tasks"][0]["lable"] = data["tasks"][0].pop("label")
    msg = load_err(data)
    assert "tasks[0].lable: unknown key (did you mean 'label'?)" in msg


def test_unknown_nested_key_deep():
    msg = load_err(raw(training={"early_stopping": {"patiense": 3}}))
    assert "training.early_stopping.patiense: unknown key (did you mean 'patience'?)" in msg


def test_unknown_source_key_suggests():
    data = raw()
    data["sources"]["net"]["colums"] = ["a"]
    msg = load_err(data)
    assert "sources.net.colums: unknown key (did you mean 'columns'?)" in msg


def test_unknown_label_key_suggests():
    data = raw()
    data["tasks"][0]["label"]["positive_label"] = ["x"]
    msg = load_err(data)
    assert "tasks[0].label.positive_label: unknown key (did you mean 'positive_labels'?)" in msg


# --- wrong types ------------------------------------------------------------------------


def test_string_for_epochs():
    msg = load_err(raw(training={"epochs": "ten"}))
    assert msg == "exp.yaml: training.epochs: expected an integer, got str 'ten'"


def test_bool_for_int():
    msg = load_err(raw(training={"batch_size": True}))
    assert "training.batch_size: expected an integer, got bool True" in msg


def test_list_for_mapping():
    msg = load_err(raw(training=[1, 2]))
    assert "training: expected a mapping (TrainingConfig), got list" in msg


def test_mapping_for_list():
    msg = load_err(raw(tasks={"name": "x"}))
    assert "tasks: expected a list of a mapping (TaskConfig), got dict" in msg


def test_positive_labels_not_a_list():
    data = raw()
    data["tasks"][1] = {
        "name": "t2",
        "type": "anomaly_detection",
        "source": "net",
        "label": {"column": "label", "positive_labels": "bad"},
    }
    msg = load_err(data)
    assert "tasks[1].label.positive_labels: expected a list of" in msg
    assert "got str 'bad'" in msg


def test_scalar_labels_accept_mixed_types():
    data = raw()
    data["tasks"][0]["label"]["positive_labels"] = [1, "attack", 2.5, True]
    cfg = config_from_dict(data, check_files=False)
    assert cfg.tasks[0].label.positive_labels == [1, "attack", 2.5, True]


def test_hidden_sizes_item_type():
    msg = load_err(raw(model={"hidden_sizes": [64, "32"]}))
    assert "model.hidden_sizes[1]: expected an integer, got str '32'" in msg


def test_ensemble_and_periodic_errors_name_their_key_paths():
    assert "model.ensemble: expected a value >= 1, got 0" in load_err(raw(model={"ensemble": 0}))
    msg = load_err(raw(model={"ensemble": 4, "normalization": "batch"}))
    assert "model.ensemble: an ensemble (k > 1) needs normalization: layer or none, not batch" in msg
    msg = load_err(raw(model={"periodic": {"frequencies": 0}}))
    assert "model.periodic.frequencies: expected a value >= 1, got 0" in msg
    assert "model.periodic.sigma: expected a value > 0.0, got 0" in load_err(raw(model={"periodic": {"sigma": 0}}))
    data = raw()
    data["sources"]["net"]["encoding"] = "periodc"
    assert "did you mean 'periodic'?" in load_err(data)


def test_kinds_value_literal_suggests():
    data = raw()
    data["sources"]["net"]["kinds"] = {"port": "category"}
    msg = load_err(data)
    assert "sources.net.kinds.port: expected one of 'numeric', 'boolean', 'categorical'" in msg
    assert "did you mean 'categorical'?" in msg


# --- missing keys -----------------------------------------------------------------------


def test_missing_task_source():
    data = raw()
    del data["tasks"][0]["source"]
    msg = load_err(data)
    assert msg == "exp.yaml: tasks[0].source: missing required key, expected a string"


def test_missing_project_name():
    data = raw()
    del data["project_name"]
    assert "project_name: missing required key" in load_err(data)


def test_missing_source_path():
    data = raw()
    data["sources"]["net"] = {"format": "csv"}
    assert "sources.net.path: missing required key, expected a string" in load_err(data)


def test_missing_label_column():
    data = raw()
    data["tasks"][1]["label"] = {"classes": ["a", "b"]}
    assert "tasks[1].label.column: missing required key" in load_err(data)


def test_empty_tasks_list():
    assert "tasks: expected a non-empty value" in load_err(raw(tasks=[]))


def test_empty_sources():
    assert "sources: expected at least one data source" in load_err(raw(sources={}))


# --- literal violations -----------------------------------------------------------------


def test_activation_relu6_lists_choices():
    msg = load_err(raw(model={"activation": "relu6"}))
    assert "model.activation: expected one of 'relu', 'gelu', 'silu', 'tanh', got str 'relu6'" in msg
    assert "did you mean 'relu'?" in msg


def test_task_type_anomaly_lists_choices():
    data = raw()
    data["tasks"][0]["type"] = "anomaly"
    msg = load_err(data)
    assert "tasks[0].type: expected one of 'anomaly_detection', 'classification', got str 'anomaly'" in msg


def test_task_type_anomaly_suggests_anomaly_detection():
    data = raw()
    data["tasks"][0]["type"] = "anomaly"
    assert "did you mean 'anomaly_detection'?" in load_err(data)


def test_task_type_typo_suggests():
    data = raw()
    data["tasks"][1]["type"] = "clasification"
    assert "did you mean 'classification'?" in load_err(data)


def test_format_literal():
    data = raw()
    data["sources"]["net"]["format"] = "jsonlines"
    msg = load_err(data)
    assert "sources.net.format: expected one of 'auto', 'json', 'jsonl', 'csv'" in msg


# --- numeric bounds ---------------------------------------------------------------------


def test_dropout_too_high():
    msg = load_err(raw(model={"dropout": 1.5}))
    assert "model.dropout: expected a value <= 0.9, got 1.5" in msg


def test_validation_fraction_zero():
    msg = load_err(raw(training={"validation_fraction": 0}))
    assert "training.validation_fraction: expected a value >= 0.01, got 0" in msg


def test_epochs_zero():
    assert "training.epochs: expected a value >= 1, got 0" in load_err(raw(training={"epochs": 0}))


def test_negative_loss_weight():
    data = raw()
    data["tasks"][0]["loss_weight"] = -1
    assert "tasks[0].loss_weight: expected a value >= 0.0, got -1" in load_err(data)


def test_piecewise_bins_bounds():
    data = raw()
    data["sources"]["net"]["piecewise_bins"] = 1
    assert "sources.net.piecewise_bins: expected a value >= 2, got 1" in load_err(data)


def test_empty_hidden_sizes():
    assert "model.hidden_sizes: expected a non-empty value" in load_err(raw(model={"hidden_sizes": []}))


def test_sentinel_threshold_bounds():
    msg = load_err(raw(training={"callbacks": {"sentinel": {"threshold": 2}}}))
    assert "training.callbacks.sentinel.threshold: expected a value <= 1.0, got 2" in msg


# --- cross checks -----------------------------------------------------------------------


def test_unknown_task_source_suggests():
    data = raw()
    data["tasks"][1]["source"] = "nets"
    msg = load_err(data)
    assert "tasks[1].source: unknown source 'nets' (did you mean 'net'?); expected one of: net" in msg


def test_unknown_task_source_without_close_match():
    data = raw()
    data["tasks"][0]["source"] = "zzz"
    msg = load_err(data)
    assert "tasks[0].source: unknown source 'zzz'; expected one of: net" in msg


def test_duplicate_task_names():
    data = raw()
    data["tasks"][1]["name"] = "threat"
    msg = load_err(data)
    assert ".name: task name 'threat' is used more than once" in msg


def test_novelty_on_classification():
    data = raw()
    data["tasks"][1]["mode"] = "novelty"
    msg = load_err(data)
    assert "tasks[1].mode: novelty mode is not for classification tasks (it has: supervised)" in msg


def test_novelty_on_anomaly_is_fine():
    data = raw()
    data["tasks"][0]["mode"] = "novelty"
    assert config_from_dict(data, check_files=False).tasks[0].mode == "novelty"


def test_classes_on_binary_task():
    data = raw()
    data["tasks"][0]["label"] = {"column": "label", "classes": ["x", "y"]}
    msg = load_err(data)
    assert "tasks[0].label.classes: anomaly_detection is binary" in msg


def test_mapping_on_binary_task():
    data = raw()
    data["tasks"][0]["label"] = {"column": "label", "mapping": {"x": "y"}}
    assert "tasks[0].label.mapping: anomaly_detection is binary" in load_err(data)


def test_positive_labels_on_classification():
    data = raw()
    data["tasks"][1]["label"]["positive_labels"] = ["a"]
    assert "tasks[1].label: positive_labels/negative_labels are for binary tasks" in load_err(data)


def test_one_class_classification():
    data = raw()
    data["tasks"][1]["label"]["classes"] = ["a"]
    assert "tasks[1].label.classes: expected at least two classes" in load_err(data)


# --- threshold_rule ---------------------------------------------------------------------


def test_threshold_rule_max_f1():
    data = raw()
    data["tasks"][0]["threshold_rule"] = "max_f1"
    assert config_from_dict(data, check_files=False).tasks[0].threshold_rule == "max_f1"


def test_threshold_rule_target_fpr():
    data = raw()
    data["tasks"][0]["threshold_rule"] = {"target_fpr": 0.01}
    rule = config_from_dict(data, check_files=False).tasks[0].threshold_rule
    assert isinstance(rule, TargetFpr) and rule.target_fpr == 0.01


@pytest.mark.parametrize(
    "rule,expect",
    [
        ("max_f2", "tasks[0].threshold_rule: expected one of 'max_f1' or a mapping (TargetFpr), got str 'max_f2'"),
        (3, "tasks[0].threshold_rule: expected one of 'max_f1' or a mapping (TargetFpr), got int 3"),
        ({"target_fpr": 1.5}, "tasks[0].threshold_rule.target_fpr: expected a value <= 1.0, got 1.5"),
        ({"target_fpr": "1%"}, "tasks[0].threshold_rule.target_fpr: expected a number, got str '1%'"),
        ({"fpr": 0.01}, "tasks[0].threshold_rule.fpr: unknown key"),
        ({}, "tasks[0].threshold_rule.target_fpr: missing required key"),
    ],
)
def test_bad_threshold_rule(rule, expect):
    data = raw()
    data["tasks"][0]["threshold_rule"] = rule
    assert expect in load_err(data)


# --- overrides --------------------------------------------------------------------------


def test_overrides_dotted_and_indexed(workdir):
    cfg = load_config(
        workdir(),
        ["training.epochs=5", "tasks[0].loss_weight=2", "model.hidden_sizes=[8, 4]", "tasks[1].label.column=kind2"],
    )
    assert cfg.training.epochs == 5
    assert cfg.tasks[0].loss_weight == 2.0
    assert cfg.model.hidden_sizes == [8, 4]
    assert cfg.tasks[1].label.column == "kind2"


def test_override_threshold_rule_mapping(workdir):
    cfg = load_config(workdir(), ["tasks[0].threshold_rule={target_fpr: 0.05}"])
    assert cfg.tasks[0].threshold_rule == TargetFpr(target_fpr=0.05)


def test_override_source_path_relative_to_config(workdir):
    root = workdir.root
    (root / "data" / "other.jsonl").write_text('{"x": 2, "label": "ok", "kind": "b"}\n')
    cfg = load_config(workdir(), ["sources.net.path=../data/other.jsonl"])
    assert cfg.source_paths("net")[0].resolve() == (root / "data" / "other.jsonl").resolve()


def test_override_does_not_touch_file(workdir):
    p = workdir()
    before = p.read_text()
    load_config(p, ["training.epochs=5"])
    assert p.read_text() == before


def test_override_typo_key_gets_suggestion(workdir):
    with pytest.raises(ConfigError, match=r"trainig: unknown key \(did you mean 'training'\?\)"):
        load_config(workdir(), ["trainig.epochs=5"])


def test_override_wrong_type_names_path(workdir):
    with pytest.raises(ConfigError, match=r"training\.epochs: expected an integer, got str 'many'"):
        load_config(workdir(), ["training.epochs=many"])


@pytest.mark.parametrize(
    "item,expect",
    [
        ("training.epochs", "expected KEY=VALUE"),
        ("tasks[7].loss_weight=2", r"no list item \[7\] here"),
        ("tasks[x].loss_weight=2", r"expected a list index like \[0\], got \[x\]"),
        ("project_name.x=1", "'x' is not inside a mapping"),
        ("=1", "empty key"),
    ],
)
def test_bad_override_forms(workdir, item, expect):
    with pytest.raises(ConfigError, match=expect):
        load_config(workdir(), [item])


def test_scientific_notation_learning_rate(workdir):
    data = raw(training={"learning_rate": 0.001})
    data["sources"]["net"]["path"] = "../data/net.jsonl"
    text = yaml.safe_dump(data).replace("learning_rate: 0.001", "learning_rate: 1e-3")
    assert "1e-3" in text
    cfg = load_config(workdir(text=text))
    assert cfg.training.learning_rate == 0.001


def test_scientific_notation_override(workdir):
    cfg = load_config(workdir(), ["training.learning_rate=1e-3"])
    assert cfg.training.learning_rate == 0.001


def test_threshold_rule_typo_suggests_max_f1():
    data = raw()
    data["tasks"][0]["threshold_rule"] = "max_f2"
    assert "did you mean 'max_f1'?" in load_err(data)


@pytest.mark.parametrize("name", ["../evil", "a b", "threat.v2", ""])
def test_task_names_must_be_safe_file_and_output_names(tmp_path, name):
    data = tmp_path / "d.jsonl"
    data.write_text('{"x": 1, "y": 0}\n')
    raw = {
        "project_name": "p",
        "sources": {"s": {"path": str(data)}},
        "tasks": [{"name": name, "type": "anomaly_detection", "source": "s", "label": {"column": "y"}}],
    }
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.name: .*expected letters, digits"):
        config_from_dict(raw)


# --- text columns -----------------------------------------------------------------------


def text_raw(**source) -> dict:
    data = raw()
    data["sources"]["net"].update({"kinds": {"domain": "text"}, **source})
    return data


def test_text_column_settings_are_typed_and_default():
    data = text_raw(text={"domain": {"max_bytes": 64, "normalize": "dns", "truncate": "tail"}})
    cfg = config_from_dict(data, check_files=False)
    t = cfg.sources["net"].text["domain"]
    assert (t.max_bytes, t.normalize, t.truncate, t.allow_missing) == (64, "dns", "tail", None)
    assert cfg.model.text.backbone == "cnn" and cfg.model.text.options() == {}
    assert cfg.model.trunk == "shared"


def test_bad_text_settings_name_their_key_paths():
    msg = load_err(text_raw(text={"domain": {"max_bytes": 0}}))
    assert "sources.net.text.domain.max_bytes: expected a value >= 1, got 0" in msg
    assert "max_bytes: expected a value <= 1024" in load_err(text_raw(text={"domain": {"max_bytes": 5000}}))
    assert "sources.net.text.domain.normalize" in load_err(text_raw(text={"domain": {"normalize": "lower"}}))
    msg = load_err(text_raw(text={"domian": {"max_bytes": 8}}))
    assert "sources.net.text.domian: is not a text column; declare it with kinds: {domian: text}" in msg


def test_text_source_refuses_tree_models_and_novelty():
    data = text_raw()
    data["tasks"][0]["learner"] = "lightgbm"
    msg = load_err(data)
    assert "tasks[0].learner: source 'net' has text columns (domain); a tree model reads numbers" in msg
    data = text_raw()
    data["tasks"][0]["mode"] = "novelty"
    assert "tasks[0].mode: novelty is not supported on source 'net', which has text columns" in load_err(data)


def with_text_model(**text) -> dict:
    data = text_raw()
    data["model"] = {"text": text}
    return data


def test_text_backbone_options_are_checked_against_the_backbone():
    cfg = config_from_dict(with_text_model(backbone="transformer", d_model=32, heads=4), check_files=False)
    assert cfg.model.text.options() == {"d_model": 32, "heads": 4}
    cnn = config_from_dict(with_text_model(channels=48, widths=[2, 3]), check_files=False)
    assert cnn.model.text.options() == {"channels": 48, "widths": [2, 3]}
    msg = load_err(with_text_model(backbone="cnn", d_model=32))
    assert "model.text.d_model: is not an option of backbone cnn" in msg
    msg = load_err(with_text_model(backbone="transformer", d_model=30, heads=4))
    assert "model.text.d_model: 30 must be a multiple of heads (4)" in msg
    assert "model.text.backbone: expected one of 'cnn', 'transformer'" in load_err(with_text_model(backbone="rnn"))
    assert "model.trunk: expected one of 'shared', 'per_source'" in load_err(raw(model={"trunk": "each"}))


def test_transformer_text_columns_of_a_source_share_one_max_bytes():
    data = text_raw(
        kinds={"domain": "text", "sni": "text"}, text={"domain": {"max_bytes": 16}, "sni": {"max_bytes": 64}}
    )
    config_from_dict(data, check_files=False)  # the CNN pools any width
    data["model"] = {"text": {"backbone": "transformer"}}
    msg = load_err(data)
    assert "sources.net.text: backbone transformer needs one max_bytes for all text columns of a source" in msg


def test_a_list_of_files_resolves_each_against_the_config_dir(workdir):
    data = raw()
    other = workdir.root / "data" / "more.jsonl"
    other.write_text((workdir.root / "data" / "net.jsonl").read_text())
    data["sources"]["net"]["path"] = ["../data/net.jsonl", str(other.resolve())]
    cfg = load_config(workdir(data))
    assert [p.resolve() for p in cfg.source_paths("net")] == [
        (workdir.root / "data" / "net.jsonl").resolve(),
        other.resolve(),
    ]


def test_a_missing_file_of_a_list_is_named(workdir):
    data = raw()
    data["sources"]["net"]["path"] = ["../data/net.jsonl", "gone.jsonl"]
    with pytest.raises(ConfigError, match=r"sources\.net\.path: data file not found: .*gone\.jsonl"):
        load_config(workdir(data))


def test_an_empty_list_of_files_is_refused(workdir):
    data = raw()
    data["sources"]["net"]["path"] = []
    with pytest.raises(ConfigError, match=r"sources\.net\.path: expected a file or a non-empty list of files"):
        load_config(workdir(data))
