"""ThreadInvariantConv2d: nn.Conv2d's values at one thread, and the same bits at two."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import agents.conv
from agents.conv import ThreadInvariantConv2d
from fire.lapack import torch_threads

# (in, out, kernel, stride, input side): the Nature CNN's three layers and MinAtar's (4 and 10 channels)
LAYERS = [(4, 32, 8, 4, 84), (32, 64, 4, 2, 20), (64, 64, 3, 1, 9), (4, 16, 3, 1, 10), (10, 16, 3, 1, 10)]
LAYOUTS = {"channels_last": torch.channels_last, "nchw": torch.contiguous_format}


def _pair(layer, layout, bias=True):
    """A ThreadInvariantConv2d and an nn.Conv2d with the same parameters, in `layout`."""
    c_in, c_out, kernel, stride, _ = layer
    torch.manual_seed(0)
    ours = ThreadInvariantConv2d(c_in, c_out, kernel, stride, bias=bias).to(memory_format=layout)
    plain = nn.Conv2d(c_in, c_out, kernel, stride, bias=bias).to(memory_format=layout)
    plain.load_state_dict(ours.state_dict())
    return ours, plain


def _input(layer, layout, batch=32, requires_grad=True):
    c_in, *_, side = layer
    x = torch.rand(batch, c_in, side, side, generator=torch.Generator().manual_seed(1))
    return x.contiguous(memory_format=layout).requires_grad_(requires_grad)


def _forward_backward(conv, x, threads, bf16=False):
    """Output and the gradients of x, weight and bias of sum(out * fixed random weights)."""
    conv.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(x.requires_grad)
    with torch_threads(threads), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = conv(x)
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(2)).to(out.dtype)
        (out * weights).sum().backward()
    grads = [x.grad, conv.weight.grad, None if conv.bias is None else conv.bias.grad]
    return [t.detach() if t is not None else None for t in (out, *grads)]


def _assert_same_bits(a, b, what):
    for name, u, v in zip(("output", "input grad", "weight grad", "bias grad"), a, b, strict=True):
        assert (u is None) == (v is None), f"{what}: {name}"
        if u is not None:
            assert u.dtype == v.dtype and torch.equal(u, v), f"{what}: {name} differs"


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("bf16", [False, True])
def test_at_one_thread_it_is_nn_conv2d_bit_for_bit(layer, layout, bf16):
    ours, plain = _pair(layer, LAYOUTS[layout])
    x = _input(layer, LAYOUTS[layout], requires_grad=layer[0] != 4)  # a first layer's input needs no gradient
    _assert_same_bits(_forward_backward(ours, x, 1, bf16), _forward_backward(plain, x, 1, bf16), f"{layer} {layout}")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("bf16", [False, True])
def test_gradients_are_the_same_bits_at_one_and_two_threads(layer, layout, bf16):
    """Fails with nn.Conv2d on AVX-512 CPUs: the first layers in fp32 channels-last, the third in bf16."""
    ours, _ = _pair(layer, LAYOUTS[layout])
    x = _input(layer, LAYOUTS[layout])
    _assert_same_bits(_forward_backward(ours, x, 1, bf16), _forward_backward(ours, x, 2, bf16), f"{layer} {layout}")


def test_without_bias_without_grad_and_with_frozen_weights_it_is_nn_conv2d():
    layer, layout = LAYERS[0], torch.channels_last
    ours, plain = _pair(layer, layout, bias=False)
    x = _input(layer, layout)
    one = _forward_backward(ours, x, 1)
    _assert_same_bits(one, _forward_backward(plain, x, 1), "no bias, 1 thread")
    _assert_same_bits(_forward_backward(ours, x, 2), one, "no bias, 2 threads")
    with torch.no_grad():
        assert torch.equal(ours(x), plain(x))
    ours.requires_grad_(False)  # a target network: nn.Conv2d's own autograd node (x needs a gradient here)
    assert type(ours(x).grad_fn) is type(plain(x).grad_fn) and torch.equal(ours(x), plain(x))


def test_the_probe_leaves_the_global_rng_alone():
    ours, _ = _pair((3, 5, 3, 1, 7), torch.contiguous_format)  # a signature no other test probed
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    _forward_backward(ours, _input((3, 5, 3, 1, 7), torch.contiguous_format), 2)
    assert torch.equal(torch.rand(4), expected)


def test_an_expanded_output_gradient_such_as_sums_is_handled():
    """out.sum().backward() hands the backward a gradient with zero strides, which the probe must not copy into."""
    ours, plain = _pair((3, 4, 3, 1, 8), torch.contiguous_format)
    x = torch.rand(2, 3, 8, 8)
    grads = []
    for conv, threads in ((plain, 1), (ours, 1), (ours, 2)):
        conv.zero_grad(set_to_none=True)
        with torch_threads(threads):
            conv(x).sum().backward()
        grads.append(conv.weight.grad)
    assert torch.equal(grads[0], grads[1]) and torch.equal(grads[1], grads[2])


@pytest.mark.parametrize("single", [(True, True, True), (False, True, False), (True, False, True)])
def test_each_gradient_comes_from_the_thread_count_the_probe_chose(monkeypatch, single):
    """Force the probe's answer: each part of the backward must run at its count (recorded, so this holds on
    any CPU), and each gradient must equal nn.Conv2d's at that count (which differ on AVX-512 CPUs here)."""
    monkeypatch.setattr(agents.conv, "_needs_one_thread", lambda *args: single)
    calls = []
    backward = agents.conv._backward

    def recording_backward(*args):
        calls.append((args[-1], torch.get_num_threads()))
        return backward(*args)

    monkeypatch.setattr(agents.conv, "_backward", recording_backward)
    layer, layout = LAYERS[0], torch.channels_last
    ours, plain = _pair(layer, layout)
    x = _input(layer, layout)
    got = _forward_backward(ours, x, 2)
    current = tuple(not one for one in single)
    assert calls == [(part, count) for part, count in ((current, 2), (single, 1)) if any(part)]
    at_one, at_two = _forward_backward(plain, x, 1), _forward_backward(plain, x, 2)
    expected = [at_two[0]] + [one if chosen else two
                              for one, two, chosen in zip(at_one[1:], at_two[1:], single, strict=True)]
    _assert_same_bits(got, expected, f"one thread for {single}")
