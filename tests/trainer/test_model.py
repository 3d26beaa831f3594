import math

import numpy as np
import pytest
import torch

from jenga_edge.contract.schema import OOV_TOKEN, Feature, FeatureSchema
from trainer.config import ModelConfig
from trainer.model import FeatureEncoder, MultiTaskModel, NoveltyHead, TaskSpec, UnsupportedInput, text_batch


def schema() -> FeatureSchema:
    return FeatureSchema(
        (
            Feature("a", "numeric", "standard", impute=5.0, mean=1.0, std=2.0),
            Feature("b", "numeric", "log1p", impute=0.0, mean=0.0, std=1.0),
            Feature("c", "numeric", "piecewise_linear", impute=0.0, edges=(0.0, 10.0, 20.0, 40.0)),
            Feature("flag", "boolean", "none", impute=1.0),
            Feature("proto", "categorical", categories=(OOV_TOKEN, "tcp", "udp")),
        )
    )


def test_encoder_applies_schema_inside_the_network():
    enc = FeatureEncoder(schema(), embedding_dim=3)
    num = torch.tensor([[3.0, math.e - 1, 15.0, 0.0], [float("nan"), float("nan"), 50.0, float("nan")]])
    cat = torch.tensor([[1], [0]])
    out = enc(num, cat)
    assert out.shape == (2, 1 + 1 + 3 + 1 + 3) == (2, enc.out_dim)
    # order: scaled columns (a, b, flag), then piecewise bins of c, then embeddings
    assert out[0, 0].item() == pytest.approx((3 - 1) / 2)  # standard
    assert out[0, 1].item() == pytest.approx(1.0)  # log1p(e - 1) = 1
    assert out[1, 0].item() == pytest.approx((5 - 1) / 2)  # NaN imputed to 5
    assert out[1, 2].item() == pytest.approx(1.0)  # boolean NaN imputed to 1
    assert out[0, 3:6].tolist() == pytest.approx([1.0, 0.5, 0.0])  # 15 fills bin 1, half of bin 2
    assert out[1, 3:6].tolist() == pytest.approx([1.0, 1.0, 1.0])  # beyond the last edge: clipped
    emb = enc.embedding.weight
    assert torch.equal(out[1, 6:], emb[0])  # OOV row of the embedding
    assert torch.equal(out[0, 6:], emb[1])


def test_encoder_clips_absurd_magnitudes():
    enc = FeatureEncoder(schema(), embedding_dim=2)
    out = enc(torch.tensor([[3e38, -3e38, 1e30, 1.0]]), torch.tensor([[2]]))
    assert torch.isfinite(out).all()


def make_model() -> MultiTaskModel:
    specs = [
        TaskSpec("threat", "anomaly_detection", "supervised", "s", 2),
        TaskSpec("kind", "classification", "supervised", "s", 4),
        TaskSpec("odd", "anomaly_detection", "novelty", "s", 2),
    ]
    return MultiTaskModel({"s": schema()}, specs, ModelConfig(hidden_sizes=[16, 8]))


def batch(n=5):
    g = torch.Generator().manual_seed(0)
    return {"numeric": torch.rand(n, 4, generator=g) * 10, "categorical": torch.randint(0, 3, (n, 1), generator=g)}


def test_forward_dispatches_on_features():
    m = make_model().eval()
    out = m("threat", features=batch())
    assert out["scores"].shape == (5,) and ((out["scores"] >= 0) & (out["scores"] <= 1)).all()
    probs = m("kind", features=batch())["scores"]
    assert probs.shape == (5, 4)
    assert torch.allclose(probs.sum(1), torch.ones(5))
    nov = m("odd", labels=torch.zeros(5, dtype=torch.long), features=batch())
    assert {"errors", "scores", "loss"} <= set(nov)


def test_batch_without_known_keys_lists_what_it_got():
    m = make_model()
    with pytest.raises(ValueError) as err:
        m("threat", labels=torch.zeros(2), pixels=torch.zeros(2), tokens=[1])
    msg = str(err.value)
    assert "features, input_ids, attention_mask" in msg
    assert "['labels', 'pixels', 'tokens']" in msg


def test_text_inputs_on_a_tabular_source_are_refused_by_name():
    with pytest.raises(UnsupportedInput, match="needs `features`"):
        make_model()("threat", input_ids=torch.zeros(2, 1, 4, dtype=torch.long))
    with pytest.raises(UnsupportedInput, match="without text features"):
        make_model()("threat", features=batch(), input_ids=torch.zeros(5, 1, 4, dtype=torch.long))


def test_audio_input_features_is_one_clear_error_naming_what_is_supported():
    with pytest.raises(UnsupportedInput) as err:
        make_model()("threat", input_features=torch.zeros(2, 80, 100))
    msg = str(err.value)
    assert "\n" not in msg and "input_features (audio) is not supported" in msg
    assert "`features`" in msg and "`input_ids`/`attention_mask`" in msg


def test_unknown_task_is_named():
    with pytest.raises(KeyError, match=r"nope.*threat, kind, odd"):
        make_model()("nope", features=batch())


def test_novelty_calibration_maps_normal_errors_to_their_cdf():
    head = NoveltyHead(4, 3, ModelConfig(decoder_sizes=[4]), calibration_bins=32)
    rng = np.random.default_rng(0)
    normal = torch.tensor(rng.lognormal(0, 1, 5000), dtype=torch.float32)
    head.calibrate(normal)
    s = head.score(normal)
    assert float(s.min()) >= 0 and float(s.max()) <= 1
    # The calibrated score of a normal row is about its rank among normal rows.
    assert float(torch.quantile(s, 0.5)) == pytest.approx(0.5, abs=0.03)
    assert float((s >= 0.9).float().mean()) == pytest.approx(0.1 * 32 / 33, abs=0.03)
    bigger = head.score(torch.tensor([1.0, 10.0, 100.0, 1e4, 1e8]))
    assert torch.all(bigger[1:] >= bigger[:-1])  # monotone in the error
    assert bigger[-1] > bigger[-2] or bigger[-1] == 1.0


def test_adapters_per_source_share_one_trunk():
    other = FeatureSchema((Feature("x", "numeric", "standard"),))
    specs = [
        TaskSpec("a", "anomaly_detection", "supervised", "s", 2),
        TaskSpec("b", "anomaly_detection", "supervised", "t", 2),
    ]
    m = MultiTaskModel({"s": schema(), "t": other}, specs, ModelConfig(hidden_sizes=[8]))
    assert set(m.adapters) == {"s", "t"}
    ra = m("a", features=batch())["scores"]
    rb = m("b", features={"numeric": torch.rand(3, 1), "categorical": torch.zeros(3, 0, dtype=torch.long)})["scores"]
    assert ra.shape == (5,) and rb.shape == (3,)


def test_novelty_calibration_keeps_bins_wide_enough_for_float32_parity():
    """Many normal rows with one reconstruction error (identical flows) used to give
    bins 1e-9 wide: a 1e-7 relative rounding difference then moved the score by up
    to a whole step. Bins are now at least MIN_LOG_WIDTH wide."""
    from trainer.model import MIN_LOG_WIDTH, NoveltyHead

    head = NoveltyHead(4, 3, ModelConfig(hidden_sizes=[8]))
    errors = torch.cat([torch.full((900,), 0.25), torch.linspace(0.01, 3.0, 100)])
    head.calibrate(errors)
    assert float(head.cal_width.min()) >= MIN_LOG_WIDTH - 1e-9
    probe = torch.tensor([0.25, 0.2500001, 1.0, 1.0000001], dtype=torch.float32)
    s = head.score(probe)
    assert abs(float(s[0] - s[1])) < 1e-5 and abs(float(s[2] - s[3])) < 1e-5
    assert (
        float(head.score(torch.tensor([0.001])))
        < float(head.score(torch.tensor([0.25])))
        < float(head.score(torch.tensor([5.0])))
    )


def _model(ensemble: int, seed: int = 0) -> MultiTaskModel:
    torch.manual_seed(seed)
    specs = [
        TaskSpec("threat", "anomaly_detection", "supervised", "s", 2),
        TaskSpec("kind", "classification", "supervised", "s", 4),
        TaskSpec("odd", "anomaly_detection", "novelty", "s", 2),
    ]
    return MultiTaskModel({"s": schema()}, specs, ModelConfig(hidden_sizes=[16, 8], ensemble=ensemble)).eval()


def test_an_ensemble_of_one_is_the_plain_network():
    model, b = _model(1), batch()
    assert not any("member_scale" in n for n, _ in model.named_parameters())
    assert isinstance(model.heads["threat"], torch.nn.Linear)
    adapter = model.adapters["s"]
    h = model.trunk(adapter.project(adapter.encoder(b["numeric"], b["categorical"])))
    expected = torch.sigmoid(model.heads["threat"](h)).squeeze(1)
    assert torch.equal(model("threat", features=b)["scores"], expected)


def test_ensemble_members_differ_and_the_score_is_the_mean_of_their_probabilities():
    model, b = _model(4), batch()
    h = model.shared("s", b["numeric"], b["categorical"])
    assert h.shape == (5, 4, 8)
    member = torch.softmax(model.heads["kind"](h), dim=2)  # [batch, k, classes]
    assert member.shape == (5, 4, 4)
    assert (member[:, 0] - member[:, 1]).abs().max() > 1e-4  # members are not copies
    out = model("kind", features=b)
    torch.testing.assert_close(out["scores"], member.mean(dim=1))
    assert out["logits"].shape == (20, 4)  # every member's logits, for the loss
    threat = model("threat", features=b)
    assert threat["scores"].shape == (5,) and threat["logits"].shape == (20,)
    # The novelty head decodes the members' mean representation.
    odd = model("odd", features=b)
    assert odd["scores"].shape == (5,)
    target = model.adapters["s"].encoder.reconstruction_target(b["numeric"], b["categorical"])
    errors = (model.heads["odd"](h.mean(dim=1)) - target).pow(2).mean(dim=1)
    torch.testing.assert_close(odd["errors"], errors)


def test_a_novelty_head_reconstructs_the_fixed_rank_of_a_periodic_feature_not_its_learned_encoding():
    feats = (
        Feature("a", "numeric", "periodic", edges=(0.0, 1.0, 4.0, 10.0)),
        Feature("b", "numeric", "standard", mean=1.0, std=2.0),
    )
    enc = FeatureEncoder(FeatureSchema(feats), embedding_dim=0)
    num, cat = torch.tensor([[0.5, 3.0], [7.0, -1.0]]), torch.zeros((2, 0), dtype=torch.long)
    target = enc.reconstruction_target(num, cat)
    assert target.shape == (2, enc.target_dim) == (2, 2)
    periodic = enc.numeric_parts[1]  # registry order: standard, then periodic
    with torch.no_grad():
        periodic.weight.zero_()
        periodic.frequencies.mul_(3.0)
    assert torch.equal(enc.reconstruction_target(num, cat), target)  # no learned weight moves it
    torch.testing.assert_close(target[:, 1], periodic.rank(num[:, :1]).squeeze(1))


def text_feature(name: str = "domain", max_bytes: int = 16) -> Feature:
    return Feature(name, "text", max_bytes=max_bytes, normalize="dns", truncate="tail")


def text_model(cfg: ModelConfig | None = None) -> MultiTaskModel:
    """Source `dns` (text only), `mix` (a domain and a number), `net` (tabular only)."""
    schemas = {
        "dns": FeatureSchema((text_feature(),), version=3),
        "mix": FeatureSchema((text_feature(), Feature("qlen", "numeric", "standard")), version=3),
        "net": FeatureSchema((Feature("x", "numeric", "standard"),)),
    }
    specs = [
        TaskSpec("dga", "anomaly_detection", "supervised", "dns", 2),
        TaskSpec("family", "classification", "supervised", "dns", 3),
        TaskSpec("mixed", "anomaly_detection", "supervised", "mix", 2),
        TaskSpec("flows", "anomaly_detection", "supervised", "net", 2),
    ]
    return MultiTaskModel(schemas, specs, cfg or ModelConfig(hidden_sizes=[8], dropout=0.0)).eval()


def text_of(*names: str, width: int = 16) -> dict:
    data = np.zeros((len(names), 1, width), dtype=np.uint8)
    lengths = np.zeros((len(names), 1), dtype=np.int64)
    for i, n in enumerate(names):
        raw = n.encode()[-width:]
        data[i, 0, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
        lengths[i, 0] = len(raw)
    ids, mask = text_batch(torch.as_tensor(data), torch.as_tensor(lengths))
    return {"input_ids": ids, "attention_mask": mask}


def test_forward_dispatches_text_tabular_or_both():
    m = text_model()
    names = text_of("xjw8f2kq.com", "example.org", "")
    assert m("dga", **names)["scores"].shape == (3,)
    assert m("family", **names)["scores"].shape == (3, 3)
    tab = {"numeric": torch.tensor([[1.0], [2.0], [float("nan")]]), "categorical": torch.zeros(3, 0, dtype=torch.long)}
    both = m("mixed", features=tab, **names)["scores"]
    assert both.shape == (3,)
    # The text and the number both reach the score: changing either moves it.
    other_num = m("mixed", features={**tab, "numeric": tab["numeric"] + 5}, **names)["scores"]
    other_text = m("mixed", features=tab, **text_of("a.com", "b.com", "c.com"))["scores"]
    assert not torch.allclose(both, other_num) and not torch.allclose(both, other_text)
    assert m("flows", features=tab)["scores"].shape == (3,)
    with pytest.raises(UnsupportedInput, match="need input_ids"):
        m("mixed", features=tab)


def test_text_batch_trims_to_the_longest_text_and_scores_do_not_move():
    m = text_model()
    short = text_of("abc.com", "x.io")
    assert short["input_ids"].shape == (2, 1, 7)
    padded = {k: torch.nn.functional.pad(v, (0, 9)) for k, v in short.items()}
    assert torch.allclose(m("dga", **short)["scores"], m("dga", **padded)["scores"], atol=1e-6)
    assert text_of("", "")["input_ids"].shape == (2, 1, 1)  # an all-empty batch keeps one position


def test_per_source_trunks_keep_sources_apart_and_shared_is_the_default():
    shared = text_model()
    assert type(shared.trunk).__name__ == "SequentialBackbone"
    assert any(k.startswith("trunk.net.") for k in shared.state_dict())  # the layout saved models have
    per = text_model(ModelConfig(hidden_sizes=[8], dropout=0.0, trunk="per_source"))
    assert set(per.trunk) == {"dns", "mix", "net"}  # type: ignore[arg-type]
    names = text_of("abc.com")
    with torch.no_grad():
        before = per("dga", **names)["scores"].clone()
        for p in per.trunk["net"].parameters():  # type: ignore[index]
            p.add_(1.0)
    assert torch.equal(per("dga", **names)["scores"], before)  # another source's trunk: no effect
