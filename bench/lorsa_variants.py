"""Ours only, on bench/lorsa.py's cached tokens: train Lorsa variants (LorsaTrainConfig overrides, one argument each,
e.g. 'ov_init=active_subspace,cooldown_frac=0.05'; tuples as 0.5;1;2; 'default' for none) and print held-out EV,
loss recovered and dead heads, for quick comparison with the peer numbers bench/lorsa.py prints.

    PYTHONPATH=$PWD:$PWD/bench OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv-bench/bin/python bench/lorsa_variants.py default ov_init=active_subspace
"""
import sys, time, warnings
sys.path.insert(0, "bench")
warnings.filterwarnings("ignore")
import torch
torch.set_num_threads(1)
import lorsa as B
from interp.core.models import load_model
from interp.lorsa import evaluate_lorsa
folder = "/work/shared/models/stories260K"
model = load_model(folder, device="cpu", frontend="hooked")
train = B.sampled(folder, 1280, seed=0)
held = B.sampled(folder, 64, seed=1)
def parse(v):
    return {k: (None if x.lower()=="none" else x=="True" if x in ("True","False") else tuple(float(y) for y in x.split(";")) if ";" in x else int(x) if x.lstrip("-").isdigit() else float(x) if x[0].isdigit() else x)
            for k, x in (kv.split("=") for kv in v.split(",") if kv)}
import functools, os
if os.environ.get("ADAM_EPS"):
    torch.optim.Adam = functools.partial(torch.optim.Adam, eps=float(os.environ["ADAM_EPS"]))
for v in sys.argv[1:]:
    kw = parse(v.replace("default", ""))
    t0 = time.process_time()
    from interp.lorsa import LorsaConfig, LorsaTrainConfig, train_lorsa
    base = dict(batch_size=8, lr=1e-3, n_steps=160, progress=False); base.update(kw)
    r = train_lorsa(model, 2, train, LorsaConfig.from_model(model, 2, expansion=8, top_k=16), LorsaTrainConfig(**base))

    t = time.process_time() - t0
    ev = evaluate_lorsa(model, r.lorsa, held, progress=False)
    print(f"VARIANT {v}: EV {ev.explained_variance:.4f}, LR {ev.loss_recovered:.2%}, dead {ev.dead_heads}, L0 {ev.l0:.1f}, train {t:.1f} CPU s", flush=True)
