"""CorrelationStats against numpy.corrcoef on the stacked data, merge, and a 2-process gloo all-reduce."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from interp.steering.stats import CorrelationStats, OneClassLabelsError, all_reduce


def _data(n=300, f=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < 0.4).long()
    x = torch.relu(torch.randn(n, f, generator=g) + 0.8 * y[:, None] * torch.linspace(-1, 1, f))
    x[:, 0] = 0.0  # never fires
    x[:, 1] = 3.25  # constant, non-zero
    x[:, 2] *= 1e3  # large scale
    return x, y


def _numpy_r(x, y):
    stacked = np.concatenate([x.numpy().T.astype(np.float64), y.numpy()[None].astype(np.float64)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(stacked)[-1, :-1]


@pytest.mark.parametrize("batch", [1, 7, 300])
def test_matches_numpy_corrcoef_any_batching(batch):
    x, y = _data()
    stats = CorrelationStats(x.shape[1])
    for i in range(0, len(x), batch):
        stats.update(x[i:i + batch], y[i:i + batch])
    r = stats.correlation().numpy()
    ref = _numpy_r(x, y)
    finite = np.isfinite(ref)
    assert not finite[0] and not finite[1]  # numpy gives nan for zero variance
    np.testing.assert_allclose(r[finite], ref[finite], atol=1e-10)
    assert r[0] == 0 and r[1] == 0
    assert stats.zero_variance.tolist()[:2] == [True, True] and not stats.zero_variance[2:].any()


def test_real_valued_labels_and_class_means():
    x, y = _data(seed=1)
    yr = y.double() + 0.3 * torch.randn(len(y), generator=torch.Generator().manual_seed(3)).double()
    s = CorrelationStats(x.shape[1]).update(x, yr)
    ref = _numpy_r(x, yr)
    ok = np.isfinite(ref)
    np.testing.assert_allclose(s.correlation().numpy()[ok], ref[ok], atol=1e-10)
    with pytest.raises(ValueError, match="0/1 labels"):
        s.mean_active(1)
    torch.testing.assert_close(s.firing_rate(), (x > 0).double().mean(0))
    b = CorrelationStats(x.shape[1]).update(x, y.bool())
    torch.testing.assert_close(b.mean_active(1), x[y == 1].double().mean(0))
    torch.testing.assert_close(b.mean_active(0), x[y == 0].double().mean(0))
    torch.testing.assert_close(b.firing_rate(), (x > 0).double().mean(0))


def test_one_class_labels_raise_clear_error():
    x, _ = _data()
    s = CorrelationStats(x.shape[1]).update(x, torch.ones(len(x)))
    with pytest.raises(OneClassLabelsError, match="always solved"):
        s.correlation()
    with pytest.raises(OneClassLabelsError, match="label 0"):
        s.mean_active(0)


def test_bad_shapes_raise():
    s = CorrelationStats(4)
    with pytest.raises(ValueError, match=r"shape \[n, 4\]"):
        s.update(torch.zeros(3, 5), torch.zeros(3))
    with pytest.raises(ValueError, match="one label per row"):
        s.update(torch.zeros(3, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        s.update(torch.full((2, 4), float("nan")), torch.zeros(2))


def test_merge_equals_single_pass_and_save_load(tmp_path):
    x, y = _data(n=401)
    whole = CorrelationStats(x.shape[1]).update(x, y)
    parts = [CorrelationStats(x.shape[1]).update(x[i::3], y[i::3]) for i in range(3)]
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert merged.n == whole.n and merged.n_by_label == whole.n_by_label
    torch.testing.assert_close(merged.correlation(), whole.correlation(), atol=1e-12, rtol=0)
    torch.testing.assert_close(merged.mean_active(1), whole.mean_active(1))
    merged.save(tmp_path / "s.safetensors")
    back = CorrelationStats.load(tmp_path / "s.safetensors")
    torch.testing.assert_close(back.correlation(), whole.correlation(), atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="n_features=12"):
        whole.merge(CorrelationStats(3))


def test_memory_is_constant_in_samples():
    s = CorrelationStats(50)
    for _ in range(20):
        s.update(torch.rand(100, 50), torch.randint(0, 2, (100,)))
    sizes = sum(t.numel() for t in s.state_dict().values())
    assert sizes == 6 + 50 * 7  # O(n_features), independent of the 2000 samples seen


def _worker(rank, world, port, path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    x, y = _data(n=257)
    s = CorrelationStats(x.shape[1]).update(x[rank::world], y[rank::world])
    all_reduce(s)
    s.save(f"{path}/rank{rank}.safetensors")
    dist.destroy_process_group()


def test_two_process_gloo_all_reduce_matches_one_process(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    x, y = _data(n=257)
    single = CorrelationStats(x.shape[1]).update(x, y)
    for rank in range(2):
        s = CorrelationStats.load(tmp_path / f"rank{rank}.safetensors")
        assert s.n == 257 and s.n_by_label == single.n_by_label
        torch.testing.assert_close(s.correlation(), single.correlation(), atol=1e-12, rtol=0)
        torch.testing.assert_close(s.mean_active(1), single.mean_active(1))
