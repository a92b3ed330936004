"""`ThreadInvariantConv2d`: nn.Conv2d whose gradients are the same bits at any torch thread count on CPU.

Why: `threads: auto` moves a run between 1 and 2 threads as the machine's load changes, which is only
harmless if an update gives the same bits at both (loop/threads.py). oneDNN's convolution gradients do
for most shapes, but on CPUs with AVX-512 some kernels split the batch sum of the weight gradient by
thread: the Nature CNN's first layer and MinAtar's layer in fp32 channels-last, the Nature CNN's third
layer in bf16 (tests/agents/test_conv.py). Dropping channels-last or oneDNN instead costs 10-60 % per
DQN update (bench/README.md, CPU threads).

How: the first backward of each (shapes, strides, dtype, thread count) computes the three gradients of
random data of that kind at the current count and at one thread. The gradients that differ are computed
at one thread from then on (the first layer's weight gradient, ~1 ms of a 20-30 ms DQN update at 2
threads), the others at the current count. At one thread this is exactly nn.Conv2d's backward. Forward
passes, other devices, unbatched inputs and convolutions without a weight gradient are nn.Conv2d's own.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fire.lapack import one_thread

_Mask = tuple[bool, bool, bool]  # (input, weight, bias) gradients
_one_thread_gradients: dict[tuple, _Mask] = {}  # backward's signature -> the gradients that need one thread


def _backward(grad: Tensor, x: Tensor, weight: Tensor, args: tuple, mask: _Mask) -> tuple:
    bias_sizes = [weight.shape[0]] if mask[2] else None
    return torch.ops.aten.convolution_backward(grad, x, weight, bias_sizes, *args, mask)


def _needs_one_thread(grad: Tensor, x: Tensor, weight: Tensor, args: tuple, mask: _Mask) -> _Mask:
    """Which of the gradients in `mask` differ between the current thread count and one thread, for
    tensors of these shapes, strides and dtype; measured once per signature on random data, whose sums
    round differently in any other order (real batches may not: MinAtar's 0/1 frames)."""
    signature = tuple((tuple(t.shape), t.stride(), t.dtype) for t in (grad, x, weight)) + (
        args, mask, torch.get_num_threads())
    if signature not in _one_thread_gradients:
        generator = torch.Generator().manual_seed(0)
        # empty_like keeps dense strides and makes overlapping ones (sum()'s expanded gradient) dense
        probe = [torch.empty_like(t).copy_(torch.randn(t.shape, generator=generator)) for t in (grad, x, weight)]
        current = _backward(*probe, args, mask)
        with one_thread():
            single = _backward(*probe, args, mask)
        _one_thread_gradients[signature] = tuple(
            a is not None and not torch.equal(a, b) for a, b in zip(current, single, strict=True))  # type: ignore[assignment]
    return _one_thread_gradients[signature]


class _Conv2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, stride, padding, dilation, groups) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.args = (stride, padding, dilation, False, (0, 0), groups)  # convolution_backward's: not transposed
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        mask: _Mask = tuple(ctx.needs_input_grad[:3])  # type: ignore[assignment]
        single = (False, False, False)
        if torch.get_num_threads() > 1:
            single = _needs_one_thread(grad, x, weight, ctx.args, mask)
        current = tuple(need and not one for need, one in zip(mask, single, strict=True))
        gradients: list[Tensor | None] = [None, None, None]
        for part, threads in ((current, contextlib.nullcontext()), (single, one_thread())):
            if any(part):
                with threads:
                    computed = _backward(grad, x, weight, ctx.args, part)
                gradients = [new if wanted else old for new, old, wanted in zip(computed, gradients, part, strict=True)]
        return (*gradients, None, None, None, None)


class ThreadInvariantConv2d(nn.Conv2d):
    """nn.Conv2d (same parameters, initialisation and forward values) with thread-invariant gradients on
    CPU (see the module docstring)."""

    def forward(self, x: Tensor) -> Tensor:
        if (x.device.type != "cpu" or x.dim() != 4 or self.padding_mode != "zeros"
                or not (torch.is_grad_enabled() and self.weight.requires_grad)):
            return super().forward(x)
        weight, bias = self.weight, self.bias
        if torch.is_autocast_enabled("cpu"):  # the casts autocast would make, outside the Function
            dtype = torch.get_autocast_dtype("cpu")
            x, weight = x.to(dtype), weight.to(dtype)
            bias = None if bias is None else bias.to(dtype)
        with torch.autocast("cpu", enabled=False):
            return _Conv2dFunction.apply(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)
