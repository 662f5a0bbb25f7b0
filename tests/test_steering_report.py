"""Selection, baselines, bootstrap CIs, side-effect ratio, SteeringReport persistence and the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.steering.baselines import diff_of_means, random_features
from interp.steering.collect import collect
from interp.steering.corrsteer import CorrSteerConfig, evaluate_vectors, run_corrsteer
from interp.steering.report import Arm, SteeringReport, bootstrap_ci, side_effect_ratio
from interp.steering.select import select_features, variant_a, variant_p, variant_s
from interp.steering.stats import CorrelationStats
from interp.core.tasks import Example, ExactMatchTask

from tiny_models import make_sae, random_prompts, tiny_llama_with_tokenizer

HOOKS = ("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")


def _stats(seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(40) % 2
    x = torch.rand(40, 10, generator=g)
    x[:, 3] += 2.0 * y  # strongly positive
    x[:, 5] -= 1.5 * y  # strongly negative
    x[:, 7] = 0.0
    return CorrelationStats(10).update(x, y), x, y


def test_select_features_signs_and_coefficients():
    (s0, x0, y0), (s1, x1, y1) = _stats(0), _stats(1)
    x1[:, 3] *= 3
    s1 = CorrelationStats(10).update(x1, y1)
    chosen = select_features({"a": s0, "b": s1})
    assert [(f.hook, f.feature) for f in chosen] == [("a", 3), ("b", 3)]
    assert chosen[0].coefficient == pytest.approx(float(x0[y0 == 1, 3].mean()), rel=1e-6)
    assert [f.feature for f in select_features({"a": s0}, sign="negative")] == [5]
    top3 = select_features({"a": s0}, per_hook=3, sign="abs")
    assert {3, 5} <= {f.feature for f in top3} and 7 not in {f.feature for f in select_features({"a": s0}, per_hook=9)}
    best = max(chosen, key=lambda f: f.r)
    assert variant_s(chosen) == [best] and variant_a(chosen) == chosen
    assert variant_p(chosen, {"a": 0.6, "b": 0.4}, baseline=0.5) == [chosen[0]]
    assert variant_p(chosen, {"a": 0.5, "b": 0.4}, baseline=0.5) == []


def test_bootstrap_ci_matches_normal_approximation():
    y = (np.random.default_rng(0).random(4000) < 0.3).astype(float)
    lo, hi = bootstrap_ci(y, n_boot=4000)
    half = 1.96 * np.sqrt(y.mean() * (1 - y.mean()) / len(y))
    assert lo == pytest.approx(y.mean() - half, abs=0.004) and hi == pytest.approx(y.mean() + half, abs=0.004)


def test_side_effect_ratio_by_hand():
    base_y, y = np.array([1, 1, 0, 0, 1]), np.array([0, 1, 1, 0, 1])
    base_t, t = ["a", "b", "c", "d", "e"], ["x", "b", "y", "z", "e"]
    ser, n = side_effect_ratio(base_y, y, base_t, t)
    assert n == 3 and ser == pytest.approx(1 / 3)  # changed: 0 (broke), 2 (fixed), 3 (wrong->wrong)
    assert np.isnan(side_effect_ratio(base_y, base_y, base_t, base_t)[0])


def test_report_frame_save_load_plot(tmp_path):
    arms = {"unsteered": Arm("unsteered", "unsteered", [1, 0, 1, 0], ["a", "b", "c", "d"]),
            "S": Arm("S", "corrsteer", [1, 1, 0, 0], ["a", "x", "y", "d"],
                     [{"hook_name": "h", "feature": 3, "coefficient": 2.0, "source": "sae"}])}
    rep = SteeringReport("t", arms, n_boot=200)
    f = rep.to_frame().set_index("condition")
    assert f.loc["S", "delta"] == 0 and f.loc["S", "ser"] == 0.5 and f.loc["S", "n_changed"] == 2
    assert f.loc["S", "features"] == "h#3 c=2"
    rep.save(tmp_path / "r")
    back = SteeringReport.load(tmp_path / "r")
    assert back.to_frame().equals(rep.to_frame())
    assert len(rep.plot().data) == 2 and "SteeringReport" in rep._repr_html_()
    with pytest.raises(ValueError, match="needs an 'unsteered' arm"):
        SteeringReport("t", {"S": arms["S"]})
    with pytest.raises(ValueError, match="different number of samples"):
        SteeringReport("t", {**arms, "A": Arm("A", "corrsteer", [1], ["a"])})


def test_plot_labels_every_side_effect_bar():
    """A SER of 0 or an undefined SER draws no bar; each bar is labelled so the panel is never blank."""
    arms = {"unsteered": Arm("unsteered", "unsteered", [1, 0, 1, 0], ["a", "b", "c", "d"]),
            "S": Arm("S", "corrsteer", [1, 1, 0, 0], ["a", "x", "y", "d"]),    # 2 changed, 1 broke
            "A": Arm("A", "corrsteer", [1, 1, 1, 0], ["a", "x", "c", "d"]),    # 1 changed, none broke
            "P": Arm("P", "corrsteer", [1, 0, 1, 0], ["a", "b", "c", "d"])}    # nothing changed
    ser = SteeringReport("t", arms, n_boot=50).plot().data[1]
    assert list(ser.x) == ["S", "A", "P"]
    assert list(ser.text) == ["0.50", "0.00", "n/a"]
    assert list(ser.y) == [0.5, 0.0, 0.0]
    assert [tuple(c) for c in ser.customdata] == [(2, 4), (1, 4), (0, 4)]


@pytest.fixture(scope="module")
def pipeline():
    model = tiny_llama_with_tokenizer(seed=3)
    saes = [make_sae(HOOKS[0], seed=2), make_sae(HOOKS[1], kind="topk", seed=3)]
    prompts = random_prompts(40, seed=5)
    base = evaluate_vectors(model, ExactMatchTask("x", [Example(p, "a") for p in prompts], max_new_tokens=3))[1]
    answers = [t.split(" ")[0] if i % 2 == 0 else "zzz" for i, t in enumerate(base)]
    task = ExactMatchTask("toy", [Example(p, a) for p, a in zip(prompts, answers)], max_new_tokens=3,
                          match="first_word")
    return model, saes, task


def test_diff_of_means_and_random_controls(pipeline):
    model, saes, task = pipeline
    col = collect(model, saes, task, pooling="mean", progress=False)
    v = diff_of_means(col, HOOKS[0], norm=2.5)
    assert float(v.vector.norm()) == pytest.approx(2.5, rel=1e-5)
    s = col.resid_stats[HOOKS[0]]
    torch.testing.assert_close(v.direction, (s.mean_active(1) - s.mean_active(0)).float())
    ctrl = random_features(saes[0], 5, norm=2.5, seed=1, exclude=(0, 1))
    assert len({c.feature for c in ctrl}) == 5 and not {0, 1} & {c.feature for c in ctrl}
    assert all(float(c.vector.norm()) == pytest.approx(2.5, rel=1e-5) for c in ctrl)
    with pytest.raises(ValueError, match="only 48"):
        random_features(saes[0], 49, norm=1.0)


def test_pipeline_scale_zero_is_unsteered_everywhere(pipeline):
    model, saes, task = pipeline
    splits = task.split(20, 8, seed=0)
    cfg = CorrSteerConfig(scale=0.0, n_random=2, batch_size=8, progress=False, n_boot=100)
    rep = run_corrsteer(model, saes, splits, cfg)
    frame = rep.to_frame()
    base = rep.arms["unsteered"]
    for name, arm in rep.arms.items():
        if arm.kind == "corrsteer":  # scale 0 leaves the model unchanged
            assert arm.generations == base.generations, name
    assert set(frame["condition"]) >= {"unsteered", "S", "A", "P", "diff_means", "random_0", "random_1"}
    assert len(base.labels) == len(splits.test) and rep.meta["n_train"] == 20
    assert {f.hook for f in rep.selected} == set(HOOKS)


def _hand_steered_greedy(model, prompt: str, vectors, n_new: int) -> str:
    """One prompt, no padding, no cache, no steer(): each step a full forward with every vector added by
    hand at the last prompt position and after it, the argmax appended, EOS ends the answer."""
    tok = model.tokenizer
    ids = [tok.bos_token_id] + tok(prompt, add_special_tokens=False)["input_ids"]
    P, new = len(ids), []

    def adder(v):
        def add(act, hook):
            act = act.clone()
            act[:, P - 1 :] += v.coefficient * v.direction.to(act.dtype)
            return act

        return add

    with torch.no_grad():
        for _ in range(n_new):
            logits = model.run_with_hooks(torch.tensor([ids + new]), fwd_hooks=[(v.hook_name, adder(v)) for v in vectors])
            nxt = int(logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            new.append(nxt)
    return tok.decode(new, skip_special_tokens=True)


def test_pipeline_steered_arms_equal_a_hand_steered_greedy_loop(pipeline):
    from interp.steering.saes import resolve_saes
    from interp.steering.select import to_vectors

    model, saes, task = pipeline
    splits = task.split(20, 8, seed=0)
    rep = run_corrsteer(model, saes, splits, CorrSteerConfig(scale=30.0, n_random=1, batch_size=8, progress=False,
                                                             n_boot=100))
    assert rep.arms["A"].generations != rep.arms["unsteered"].generations  # the case steers something
    s = rep.arms["S"].vectors[0]
    assert s["hook_name"] == max(rep.selected, key=lambda f: f.r).hook
    by_hook = resolve_saes(model, saes)
    for name, variant in (("S", variant_s), ("A", variant_a)):
        vectors = to_vectors(variant(rep.selected), by_hook, scale=30.0)
        assert rep.arms[name].vectors == [v.to_dict() for v in vectors]
        want = [_hand_steered_greedy(model, e.prompt, vectors, task.max_new_tokens) for e in splits.test.examples]
        assert rep.arms[name].generations == want, name
    assert rep.arms["unsteered"].generations == [_hand_steered_greedy(model, e.prompt, [], task.max_new_tokens)
                                                 for e in splits.test.examples]
