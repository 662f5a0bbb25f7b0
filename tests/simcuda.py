"""A simulated CUDA device, so that CPU-only tests can check device placement for real.

Inside ``with SimulatedCuda():`` every tensor carries a virtual device, ``cpu`` or ``cuda:0``, while its
data stays on the CPU and every op computes real numbers. ``.to("cuda")``, ``.cuda()``, ``device="cuda"``
and ``module.to("cuda")`` put tensors on the virtual GPU (``x.device`` then says ``cuda:0``); results
inherit their inputs' device; and whatever a real CUDA build refuses raises :class:`DeviceMismatch`:

- an op whose tensor arguments live on different devices (a 0-dim CPU tensor is allowed, as CUDA allows
  CPU scalars; CPU index tensors are allowed in ``x[idx]``; ``copy_`` and ``x[idx] = value`` copy across);
- a generator on one device used to sample on another (``torch.multinomial(cuda_probs, generator=cpu_gen)``,
  ``torch.randn(..., device="cuda", generator=cpu_gen)``);
- ``.numpy()`` / ``np.asarray`` of a CUDA tensor.

``torch.Generator(device="cuda")`` works inside the block (a CPU generator that reports ``cuda``).

What it cannot see: ops run in C++ below the Python-visible call (their inputs are checked once at the
call), CUDA-only kernels and dtypes, streams and asynchrony, memory, and speed. It is a placement check,
not a GPU.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakTensorKeyDictionary

CPU = torch.device("cpu")
CUDA = torch.device("cuda", 0)
_REAL_GENERATOR = torch.Generator

__all__ = ["SimulatedCuda", "DeviceMismatch", "CUDA", "CPU"]


class DeviceMismatch(RuntimeError):
    """What a CUDA build would have raised: tensors (or a generator) on different devices in one op."""


def _norm(device: Any) -> torch.device:
    d = device if isinstance(device, torch.device) else torch.device(device)
    if d.type == "cuda":
        return torch.device("cuda", d.index or 0)
    if d.type == "cpu":
        return CPU
    raise ValueError(f"The simulated devices are cpu and cuda; got {d}.")


def _simulated(device: Any) -> bool:
    return (device if isinstance(device, torch.device) else torch.device(device)).type in ("cpu", "cuda")


class _SimGenerator(_REAL_GENERATOR):
    """A CPU generator that reports the device it was asked for."""

    def __new__(cls, device: Any = "cpu"):
        obj = super().__new__(cls, "cpu")
        obj._sim_device = _norm(device)
        return obj

    def __init__(self, device: Any = "cpu") -> None:
        pass

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return self._sim_device


def _gen_device(gen: Any) -> torch.device:
    return getattr(gen, "_sim_device", CPU)


_TENSOR = torch.Tensor
_METADATA_ONLY = {torch._has_compatible_shallow_copy_type, _TENSOR.is_same_size, _TENSOR.is_set_to}
_PROPS_INHERIT = {_TENSOR.grad, _TENSOR.data, _TENSOR.T, _TENSOR.mT, _TENSOR.H, _TENSOR.real, _TENSOR.imag}


class SimulatedCuda(TorchFunctionMode):
    """Context manager: a virtual ``cuda:0`` device on the CPU (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.where: WeakTensorKeyDictionary = WeakTensorKeyDictionary()
        self.checked = 0  # ops checked: a test can assert the harness really saw its code run

    # ------------------------------------------------------------------ bookkeeping
    def device_of(self, t: Tensor) -> torch.device:  # noqa: F821 (Tensor is torch.Tensor)
        real = torch.Tensor.device.__get__(t)  # called inside the handler: the mode is off, this is the real one
        if real.type != "cpu":
            return real  # meta tensors (models built before their weights load) are not simulated
        return self.where.get(t, CPU)

    def _tag(self, out: Any, device: torch.device) -> Any:
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                if device == CPU:
                    self.where.pop(t, None)
                else:
                    self.where[t] = device
        return out

    def __enter__(self):
        torch.Generator = _SimGenerator  # type: ignore[misc]
        return super().__enter__()

    def __exit__(self, *exc):
        torch.Generator = _REAL_GENERATOR  # type: ignore[misc]
        return super().__exit__(*exc)

    def _devices(self, values: Any, *, scalars_free: bool = True) -> set[torch.device]:
        out = set()
        for t in tree_flatten(values)[0]:
            if isinstance(t, torch.Tensor):
                d = self.device_of(t)
                if scalars_free and d == CPU and t.dim() == 0:
                    continue  # CUDA kernels take CPU scalars
                out.add(d)
        return out

    def _fail(self, name: str, devices: set[torch.device], what: str = "tensors") -> None:
        listed = " and ".join(sorted(str(d) for d in devices))
        raise DeviceMismatch(f"[simulated CUDA] {name}: expected all {what} to be on the same device, but found {listed}.")

    # ------------------------------------------------------------------ dispatch
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", repr(func))
        owner = getattr(func, "__self__", None)
        self.checked += 1

        # properties
        if owner is _TENSOR.device and name == "__get__":
            return self.device_of(args[0])
        if owner is _TENSOR.is_cuda and name == "__get__":
            return self.device_of(args[0]).type == "cuda"
        if owner is _TENSOR.data and name == "__set__":
            out = func(*args, **kwargs)
            self._tag(args[0], self.device_of(args[1]))  # module.to(): param.data = converted
            return out
        if owner in _PROPS_INHERIT and name == "__get__":
            return self._tag(func(*args, **kwargs), self.device_of(args[0]))
        if func is _TENSOR.get_device:
            d = self.device_of(args[0])
            return d.index if d.type == "cuda" else -1

        # transfers
        if func in (_TENSOR.numpy, _TENSOR.__array__) and self.device_of(args[0]).type == "cuda":
            raise TypeError("[simulated CUDA] can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() "
                            "to copy the tensor to host memory first.")
        if func is _TENSOR.cpu:
            src = args[0]
            return self._tag(src.clone() if self.device_of(src) != CPU else func(*args, **kwargs), CPU)
        if func is _TENSOR.cuda:
            src = args[0]
            if self.device_of(src) == CUDA:
                return src
            return self._tag(src.clone(), CUDA)
        if func is _TENSOR.to:
            return self._to(func, args, kwargs)
        if func in _METADATA_ONLY:
            return func(*args, **kwargs)
        if func is _TENSOR.copy_:
            return func(*args, **kwargs)  # copies across devices; self keeps its device

        # generators
        gen = kwargs.get("generator")
        gen_dev = _gen_device(gen) if gen is not None else None

        # factories and explicit placement
        if "device" in kwargs and kwargs["device"] is not None:
            if not _simulated(kwargs["device"]):  # e.g. meta tensors while a model is built: not ours
                return func(*args, **kwargs)
            target = _norm(kwargs["device"])
            kwargs["device"] = "cpu"
            if gen_dev is not None and gen_dev != target:
                self._fail(name, {target, gen_dev}, "tensors and the generator")
            return self._tag(func(*args, **kwargs), target)

        if func is _TENSOR.__getitem__:
            src, index = args[0], args[1]
            d = self.device_of(src)
            bad = {i for i in self._devices(index, scalars_free=False) if i not in (CPU, d)}
            if bad:
                self._fail(name, {d, *bad}, "indices and the indexed tensor")
            return self._tag(func(*args, **kwargs), d)
        if func is _TENSOR.__setitem__:
            d = self.device_of(args[0])
            bad = {i for i in self._devices(args[1], scalars_free=False) if i not in (CPU, d)}
            if bad:
                self._fail(name, {d, *bad}, "indices and the indexed tensor")
            return func(*args, **kwargs)

        devices = self._devices((args, {k: v for k, v in kwargs.items() if k != "generator"}))
        if len(devices) > 1:
            self._fail(name, devices)
        common = devices.pop() if devices else CPU
        if gen_dev is not None and gen_dev != common:
            self._fail(name, {common, gen_dev}, "tensors and the generator")
        out = func(*args, **kwargs)
        if common != CPU:
            self._tag(out, common)
        return out

    def _to(self, func, args, kwargs):
        src = args[0]
        rest = args[1:]
        if rest and isinstance(rest[0], torch.Tensor):  # x.to(other): other's device and dtype
            other = rest[0]
            target, dtype = self.device_of(other), other.dtype
            real_kwargs = dict(dtype=dtype)
        else:
            device, dtype, non_blocking, memory_format = torch._C._nn._parse_to(*rest, **kwargs)
            if device is not None and not _simulated(device):
                return func(*args, **kwargs)
            target = _norm(device) if device is not None else self.device_of(src)
            real_kwargs = {}
            if dtype is not None:
                real_kwargs["dtype"] = dtype
            if memory_format is not None:
                real_kwargs["memory_format"] = memory_format
            if kwargs.get("copy"):
                real_kwargs["copy"] = True
        if target != self.device_of(src):
            real_kwargs["copy"] = True  # a transfer is a new tensor, never the source itself
        out = src.to(**real_kwargs) if real_kwargs else src
        return self._tag(out, target) if out is not src else out
