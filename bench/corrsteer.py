"""Benchmark CorrSteer's collection, steering hooks, memory and streaming statistics (ratios in one run).

    .venv/bin/python bench/corrsteer.py            # toy-lm if present, else stories260K
    .venv/bin/python bench/corrsteer.py --quick    # smaller sizes

Prints, each against a baseline measured in the same run:
1. collection (generation + SAE encoding at every step + statistics) vs plain greedy generation of the
   same batches (aim <= 1.5x);
2. greedy generation inside ``steer()`` vs without (aim <= 1.1x);
3. peak resident memory of ``collect`` on 500 vs 4000 samples, each in a fresh process (aim: flat within 10%);
4. streaming ``CorrelationStats`` vs storing all activations and calling ``numpy.corrcoef`` (time, memory).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _model(name: str):
    from interp.core.models import load_model, shared_model_dir

    if name == "auto":
        from interp import zoo

        try:
            return zoo.load("toy-lm"), "toy-lm"
        except FileNotFoundError:
            return load_model(shared_model_dir()), "stories260K"
    return load_model(name if name != "stories260K" else shared_model_dir()), name


def _saes(model, d_sae: int):
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(0)
    hooks = [f"blocks.{i}.hook_resid_post" for i in range(model.cfg.n_layers)]
    return [TopKSAE(TopKSAEConfig(d_in=model.cfg.d_model, d_sae=d_sae, k=16, metadata=SAEMetadata(hook_name=h)))
            for h in hooks]


def _prompts(model_name: str, n: int) -> list[str]:
    if model_name == "toy-lm":
        from interp.steering.tasks import zoo_qa_task

        return zoo_qa_task(n).prompts
    base = ["Once upon a time, there was a little girl named Lily. One day, Lily",
            "Tom and his dog went to the park. Tom saw a big", "The sun was shining and the birds"]
    return [base[i % len(base)] for i in range(n)]


def _task(model_name: str, n: int):
    from interp.steering.tasks import Example, ExactMatchTask

    return ExactMatchTask("bench", [Example(p, "the") for p in _prompts(model_name, n)], max_new_tokens=8)


def _best(fn, repeats: int) -> float:  # noqa: D103
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def memory_child(model_name: str, n: int, d_sae: int, max_new: int) -> None:
    from interp.steering.collect import collect

    model, name = _model(model_name)
    collect(model, _saes(model, d_sae), _task(name, n), max_new_tokens=max_new, batch_size=64, progress=False,
            top_k_examples=5)
    print(json.dumps({"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="auto")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (1 is faster on an overloaded machine)")
    ap.add_argument("--memory-child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        return memory_child(args.model, *args.memory_child)
    torch.set_grad_enabled(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    from interp.steering.collect import collect
    from interp.steering.generate import greedy_generate
    from interp.steering.select import SelectedFeature, to_vectors
    from interp.steering.stats import CorrelationStats
    from interp.steering.steer import steer

    model, name = _model(args.model)
    d_sae = 512 if args.quick else 2048
    n, max_new, reps = (64, 8, 3) if args.quick else (256, 8, 5)
    saes = _saes(model, d_sae)
    task = _task(name, n)
    prompts = task.prompts
    print(f"model {name} (d_model {model.cfg.d_model}, {model.cfg.n_layers} layers), {len(saes)} SAEs x {d_sae} "
          f"features, {n} prompts, {max_new} new tokens, batch 64, torch threads {torch.get_num_threads()}")

    def plain():
        for i in range(0, n, 64):
            greedy_generate(model, prompts[i : i + 64], max_new, stop_at_eos=False)

    feats = [SelectedFeature(s.cfg.metadata.hook_name, 3, 0.3, 2.0, 0.5) for s in saes]
    vecs = to_vectors(feats, {s.cfg.metadata.hook_name: s for s in saes})

    def collecting():
        collect(model, saes, task, max_new_tokens=max_new, batch_size=64, progress=False)

    def steered():
        with steer(model, vecs):
            plain()

    # interleaved repeats, best of each: a shared machine's load drifts between runs
    times: dict[str, list[float]] = {"plain": [], "collect": [], "steered": []}
    for _ in range(reps):
        for key, fn in (("plain", plain), ("collect", collecting), ("steered", steered)):
            t = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t)
    t_plain, t_collect, t_steer = (min(times[k]) for k in ("plain", "collect", "steered"))
    print(f"[1] collection {t_collect:.2f}s vs plain greedy generation {t_plain:.2f}s: "
          f"overhead {t_collect / t_plain:.2f}x (aim <= 1.5x)")
    print(f"[2] steered generation {t_steer:.2f}s vs unsteered {t_plain:.2f}s: overhead {t_steer / t_plain:.2f}x "
          f"(aim <= 1.1x; {len(vecs)} hooks steered)")

    rss = {}
    for size in (500, 4000):
        cmd = [sys.executable, __file__, "--model", args.model, "--memory-child", str(size), str(d_sae), "2"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rss[size] = json.loads(out.stdout.strip().splitlines()[-1])["maxrss_mb"]
    print(f"[3] peak RSS of collect: 500 samples {rss[500]:.0f} MB, 4000 samples {rss[4000]:.0f} MB: "
          f"ratio {rss[4000] / rss[500]:.3f} (aim flat within 10%)")

    n_s, f = (2000, 2048) if args.quick else (4000, 4096)
    g = torch.Generator().manual_seed(0)
    chunks = [(torch.relu(torch.randn(250, f, generator=g) - 1.5), (torch.rand(250, generator=g) < 0.4).long())
              for _ in range(n_s // 250)]

    def streaming():
        s = CorrelationStats(f)
        for x, y in chunks:
            s.update(x, y)
        return s.correlation()

    def stored():
        xs = np.concatenate([x.numpy() for x, _ in chunks]).astype(np.float64)
        ys = np.concatenate([y.numpy() for _, y in chunks]).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.corrcoef(np.concatenate([xs.T, ys[None]]))[-1, :-1]

    t_stream = _best(streaming, 2)
    t_store = _best(stored, 1)
    tracemalloc.start()
    stored()
    peak_store = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    state_mb = sum(t.numel() * t.element_size() for t in CorrelationStats(f).state_dict().values()) / 2**20
    r_stream, r_store = streaming().numpy(), stored()
    ok = np.isfinite(r_store)
    print(f"[4] {n_s} samples x {f} features: streaming {t_stream:.2f}s vs store + corrcoef {t_store:.2f}s "
          f"(time ratio streaming/stored {t_stream / t_store:.2f}); memory: streaming state {state_mb:.2f} MB vs stored path peak "
          f"{peak_store:.0f} MB ({peak_store / state_mb:.0f}x); max |r difference| "
          f"{np.abs(r_stream[ok] - r_store[ok]).max():.1e}")


if __name__ == "__main__":
    main()
