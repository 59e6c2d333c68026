"""Gradient estimators of the compression layers against their published formulas.

* LSQ (Esser et al., ICLR 2020, eq. 3): d q / d s = -v/s + round(v/s) inside [Qn, Qp], Qn / Qp
  outside, times g = 1 / sqrt(N Qp); d q / d v = 1 inside, 0 outside.
* Clipped STE (Hubara et al. 2016): d sign / d v = 1 for |v| <= 1, else 0.
* FDA (Xu et al., NeurIPS 2021): d sign / d v ~ 4 w / pi sum_{i<n} cos((2i+1) w v).
* AdderNet (Chen et al., CVPR 2020, eqs. 5-6 and 11): dY/dW = X - W, dY/dX = HT(W - X),
  adaptive learning rate eta sqrt(k) / ||grad||_2.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autochip.compress.adder import (
    AdderConv2d,
    AdderLinear,
    adder_matmul,
    scale_adder_gradients,
    template_weights,
)
from autochip.compress.binary import (
    BinaryAct,
    NoiseAdaptation,
    binarize,
    fda_grad,
    sign_fda,
    sign_ste,
)
from autochip.compress.quant import (
    QuantAct,
    WeightQuantizer,
    act_range,
    calibrate_scale,
    lsq_quantize,
    round_half_up,
    weight_range,
)


def test_round_half_up_rounds_ties_up() -> None:
    v = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -0.51])
    assert round_half_up(v).tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 0.0, -1.0]


def test_ranges() -> None:
    assert weight_range(8) == (-127, 127)
    assert weight_range(2) == (-1, 1)
    assert act_range(8, signed=True) == (-128, 127)
    assert act_range(4, signed=False) == (0, 7)


def test_lsq_forward_and_gradients_match_formula() -> None:
    torch.manual_seed(0)
    v = (torch.randn(200) * 3).requires_grad_()
    s = torch.tensor(0.37, requires_grad=True)
    qn, qp, g = -8, 7, 0.123
    out = lsq_quantize(v, s, qn, qp, g)
    upstream = torch.randn(200)
    out.backward(upstream)
    r = v.detach() / 0.37
    q = torch.clamp(torch.floor(r + 0.5), qn, qp)
    assert torch.equal(out.detach(), q * s.detach())
    inside = (r >= qn) & (r <= qp)
    assert v.grad is not None and s.grad is not None
    assert torch.equal(v.grad, upstream * inside.float())
    ds = torch.where(inside, -r + q, q)
    assert s.grad.item() == pytest.approx(float((upstream * ds).sum() * g), rel=1e-5)
    assert inside.any() and (~inside).any()  # both branches exercised


def test_lsq_per_channel_step_gradient_reduces_per_channel() -> None:
    torch.manual_seed(1)
    wq = WeightQuantizer(3, bits=4)
    w = torch.randn(3, 2, 3, 3)
    wq.init_from(w)
    out = wq(w)
    out.sum().backward()
    assert wq.scale.grad is not None and wq.scale.grad.shape == (3,)
    g = 1.0 / math.sqrt(w[0].numel() * 7)
    for k in range(3):
        r = w[k] / wq.scale[k].detach()
        q = torch.clamp(torch.floor(r + 0.5), -7, 7)
        inside = (r >= -7) & (r <= 7)
        expect = torch.where(inside, q - r, q).sum() * g
        assert wq.scale.grad[k].item() == pytest.approx(expect.item(), rel=1e-5)


def test_calibration_minmax_and_percentile() -> None:
    v = torch.cat([torch.linspace(-1, 1, 10001), torch.tensor([50.0])])
    assert calibrate_scale(v, 127, "minmax") == pytest.approx(50.0 / 127 * (1 + 2**-7))
    assert calibrate_scale(v, 127, "percentile") < 2.0 / 127
    with pytest.raises(ValueError, match="calibration method must be one of"):
        calibrate_scale(v, 127, "kl")


def _quant_mse(v: torch.Tensor, step: float, qn: int, qp: int) -> float:
    return float(((torch.clamp(torch.floor(v / step + 0.5), qn, qp) * step - v) ** 2).mean())


@pytest.mark.parametrize("bits", [3, 4, 6])
@pytest.mark.parametrize("signed", [True, False])
def test_calibration_mse_finds_the_least_error_step(bits: int, signed: bool) -> None:
    """``mse`` picks (nearly) the step of least quantisation error, checked against a fine
    brute-force scan; at narrow widths that clips far below the maximum and beats min-max."""
    g = torch.Generator().manual_seed(bits)
    # heavy-tailed like activations: Laplace magnitudes, a few outliers
    v = torch.distributions.Laplace(0.0, 1.0).sample((20000,))
    v[:5] = torch.tensor([30.0, -25.0, 20.0, 18.0, -40.0])
    v = v[torch.randperm(len(v), generator=g)]
    if not signed:
        v = torch.cat([v.abs(), -v[:100].abs()])  # a ReLU output (and a few negatives it clips)
    qn, qp = act_range(bits, signed)
    step = calibrate_scale(v, qp, "mse", qn=qn)
    fine = [
        float(v.clamp_min(0).max() if not signed else v.abs().max()) * k / 5000 / qp
        for k in range(1, 5001)
    ]
    best = min(_quant_mse(v, s, qn, qp) for s in fine)
    assert _quant_mse(v, step, qn, qp) <= best * 1.02
    minmax = calibrate_scale(v, qp, "minmax")
    assert _quant_mse(v, step, qn, qp) < 0.5 * _quant_mse(v, minmax, qn, qp)
    assert step < 0.75 * minmax


def test_quant_act_nonnegative_half() -> None:
    q = QuantAct(8, signed=False)
    q.scale.data.fill_(0.1)
    out = q(torch.tensor([-1.0, 0.04, 0.05, 100.0]))
    assert (out / 0.1).round().tolist() == [0.0, 0.0, 1.0, 127.0]


def test_binarize_maps_zero_to_minus_one() -> None:
    assert binarize(torch.tensor([-0.3, 0.0, 1e-9, 2.0])).tolist() == [-1.0, -1.0, 1.0, 1.0]


def test_ste_clip_gradient() -> None:
    v = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.7, 1.0, 1.01], requires_grad=True)
    sign_ste(v).backward(torch.full((7,), 3.0))
    assert v.grad is not None
    assert v.grad.tolist() == [0.0, 3.0, 3.0, 3.0, 3.0, 3.0, 0.0]


@pytest.mark.parametrize(("omega", "terms", "clip"), [(0.1, 10, 1.0), (math.pi / 2, 4, 2.0)])
def test_fda_gradient_is_the_derivative_of_the_truncated_sine_series(
    omega: float, terms: int, clip: float
) -> None:
    v = torch.linspace(-clip * 1.5, clip * 1.5, 301, dtype=torch.float64, requires_grad=True)
    out = sign_fda(v, omega, terms, clip)
    assert torch.equal(out.detach(), binarize(v.detach()))
    out.sum().backward()
    # autograd derivative of the series itself: 4/pi sum sin((2i+1) w v) / (2i+1)
    vv = v.detach().clone().requires_grad_()
    series = sum(torch.sin((2 * i + 1) * omega * vv) / (2 * i + 1) for i in range(terms)) * (
        4 / math.pi
    )
    assert isinstance(series, torch.Tensor)
    series.sum().backward()
    assert vv.grad is not None and v.grad is not None
    inside = v.detach().abs() <= clip
    assert torch.allclose(v.grad[inside], vv.grad[inside])
    assert torch.all(v.grad[~inside] == 0)
    assert torch.allclose(fda_grad(v.detach(), omega, terms, clip), v.grad)


def test_fda_series_approximates_sign() -> None:
    """The series itself converges to sign(v) away from 0 (sanity of the formula)."""
    v = torch.tensor([-2.0, -1.0, 1.0, 2.0], dtype=torch.float64)
    omega = math.pi / 4  # period 8, so |v| <= 2 is well inside one half-period
    series = sum(torch.sin((2 * i + 1) * omega * v) / (2 * i + 1) for i in range(200))
    assert isinstance(series, torch.Tensor)
    assert torch.allclose(series * 4 / math.pi, torch.sign(v), atol=0.02)


def test_noise_adaptation_adds_gradient_not_value() -> None:
    act = BinaryAct("fda")
    assert isinstance(act.nam, NoiseAdaptation)
    with torch.no_grad():
        act.nam.amp.copy_(torch.linspace(-2.0, 3.0, act.nam.amp.numel()))
    v = torch.linspace(-1.5, 1.5, 61, requires_grad=True)
    out = act(v)
    assert torch.equal(out.detach(), binarize(v.detach()))
    out.sum().backward()
    freq, amp = act.nam.freq, act.nam.amp.detach()
    h = freq.numel()
    nam_grad = (torch.cos(v.detach().unsqueeze(-1) * freq) * torch.tanh(amp) / h).sum(-1)
    nam_grad = torch.where(v.detach().abs() <= 1.0, nam_grad, torch.zeros_like(nam_grad))
    assert nam_grad.abs().max() <= 1.0 and nam_grad.abs().max() > 0.1
    expect = fda_grad(v.detach(), 0.1, 10, 1.0) + nam_grad
    assert v.grad is not None
    assert torch.allclose(v.grad, expect, atol=1e-6)
    assert act.nam.amp.grad is not None and act.nam.amp.grad.abs().sum() > 0


def test_adder_forward_and_gradients() -> None:
    torch.manual_seed(2)
    x = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    out = adder_matmul(x, w)
    expect = -(x.detach()[:, None, :, :] - w.detach()[None, :, :, None]).abs().sum(dim=2)
    assert torch.allclose(out.detach(), expect)
    g = torch.randn_like(out)
    out.backward(g)
    diff = x.detach()[:, None, :, :] - w.detach()[None, :, :, None]  # N, K, C, L
    grad_w = (g[:, :, None, :] * diff).sum(dim=(0, 3))  # dY/dW = X - W
    grad_x = (g[:, :, None, :] * (-diff).clamp(-1, 1)).sum(dim=1)  # dY/dX = HT(W - X)
    assert w.grad is not None and x.grad is not None
    assert torch.allclose(w.grad, grad_w)
    assert torch.allclose(x.grad, grad_x)


def test_adder_conv_against_pytorch() -> None:
    """Forward: ``-torch.cdist(p=1)`` of the unfolded windows. Backward: PyTorch autograd of the
    two smooth surrogates whose derivatives the paper uses, ``-sum (X - W)^2 / 2`` for the
    weights (``X - W``) and ``-sum huber(X - W, delta=1)`` for the inputs (``HT(W - X)``)."""
    torch.manual_seed(3)
    conv = AdderConv2d(4, 6, 3, padding=1, stride=2, groups=2, bias=False).double()
    x = (2 * torch.randn(2, 4, 7, 7, dtype=torch.float64)).requires_grad_()
    out = conv(x)
    cols = F.unfold(x.detach(), 3, padding=1, stride=2).reshape(2, 2, 18, -1)  # N, G, C/G*9, L
    w = conv.weight.detach().reshape(2, 3, 18)
    ref = torch.cat(
        [-torch.cdist(cols[:, g].transpose(1, 2), w[g].unsqueeze(0), p=1.0) for g in range(2)],
        dim=2,
    )  # N, L, K
    assert torch.allclose(out.detach().reshape(2, 6, -1), ref.transpose(1, 2))
    g_out = torch.randn_like(out)
    out.backward(g_out)
    xs = x.detach().clone().requires_grad_()
    ws = conv.weight.detach().clone().requires_grad_()
    cs = F.unfold(xs, 3, padding=1, stride=2).reshape(2, 2, 18, 1, -1)  # N, G, C', 1, L
    d = cs - ws.reshape(2, 3, 18).unsqueeze(0).transpose(2, 3).unsqueeze(-1)  # N, G, C', K/G, L
    gw = g_out.reshape(2, 2, 3, -1).unsqueeze(2)  # N, G, 1, K/G, L
    surrogate_w = (gw * -(cs.detach() - ws.reshape(2, 3, 18).transpose(1, 2)[None, ..., None])
                   .pow(2) / 2).sum()  # fmt: skip
    (grad_w,) = torch.autograd.grad(surrogate_w, ws)
    huber = F.huber_loss(d, torch.zeros_like(d), reduction="none", delta=1.0)
    (grad_x,) = torch.autograd.grad((gw * -huber).sum(), xs)
    assert conv.weight.grad is not None and x.grad is not None
    assert torch.allclose(conv.weight.grad, grad_w)
    assert torch.allclose(x.grad, grad_x)


def test_template_weights_separate_the_output_channels() -> None:
    """Copied conv weights (~0.05) against ReLU features (~0..6): every output channel computes
    about ``-sum |x|``. Template weights make the channels differ as much as the inputs do."""
    torch.manual_seed(4)
    x = torch.relu(3 * torch.randn(512, 40))
    layer = AdderLinear(40, 8, bias=False)
    with torch.no_grad():
        layer.weight.copy_(0.05 * torch.randn(8, 40))

    def spread(out: torch.Tensor) -> float:  # across channels / across samples
        return float(out.std(dim=1).mean() / out.std(dim=0).mean())

    before = spread(layer(x).detach())
    w = template_weights(layer, x)
    mean, std = x.mean(0), x.std(0)
    u = layer.weight / layer.weight.pow(2).mean(1, keepdim=True).sqrt()
    assert torch.allclose(w, mean + std * u.detach(), atol=1e-5)
    with torch.no_grad():
        layer.weight.copy_(w)
    assert before < 0.1 < 0.5 < spread(layer(x).detach())
    # a conv's templates are those of the linear layer on its unfolded windows
    conv = AdderConv2d(2, 4, 3, groups=1, bias=False)
    xc = torch.relu(torch.randn(16, 2, 6, 6))
    lin = AdderLinear(18, 4, bias=False)
    with torch.no_grad():
        lin.weight.copy_(conv.weight.reshape(4, 18))
    cols = F.unfold(xc, 3).transpose(1, 2).reshape(-1, 18)
    assert torch.allclose(template_weights(conv, xc).reshape(4, 18), template_weights(lin, cols))


def test_adder_adaptive_learning_rate_scaling() -> None:
    layer = AdderLinear(6, 4, bias=False)
    layer.weight.grad = torch.arange(24, dtype=torch.float32).reshape(4, 6) - 7.0
    before = layer.weight.grad.clone()
    scale_adder_gradients(layer, eta=0.2)
    expect = before * (0.2 * math.sqrt(24) / before.norm())
    assert torch.allclose(layer.weight.grad, expect)
    assert layer.weight.grad.norm().item() == pytest.approx(0.2 * math.sqrt(24), rel=1e-5)


def test_kd_loss_formula() -> None:
    from autochip.compress.distill import kd_loss

    torch.manual_seed(3)
    s, t = torch.randn(5, 10), torch.randn(5, 10)
    p_t = torch.softmax(t / 4, dim=1)
    log_p_s = torch.log_softmax(s / 4, dim=1)
    expect = (p_t * (p_t.log() - log_p_s)).sum(dim=1).mean() * 16
    assert kd_loss(s, t, 4.0).item() == pytest.approx(expect.item(), rel=1e-5)


@pytest.mark.parametrize("groups", [1, 2])
def test_pkkd_kernels_match_brute_force_distances(groups: int) -> None:
    """Gaussian kernel of a conv from its output vs exp(-||x - w||^2 / 2 sigma^2) directly."""
    from autochip.compress.distill import gaussian_kernel_features, laplace_features

    torch.manual_seed(4)
    conv = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=groups)
    x = torch.randn(2, 4, 5, 5)
    feats = gaussian_kernel_features(conv, x, conv(x))
    cols = torch.nn.functional.unfold(x, 3, padding=1, stride=2)  # N, C*9, L
    cg = 4 // groups
    d2 = torch.empty(2, 6, cols.shape[-1])
    for k in range(6):
        g = k // (6 // groups)
        xs = cols[:, g * cg * 9 : (g + 1) * cg * 9]
        d2[:, k] = ((xs - conv.weight[k].reshape(-1, 1)) ** 2).sum(dim=1)
    d2 = d2.reshape(2, 6, 3, 3)
    expect = torch.exp(-d2 / (2 * d2.mean()))
    assert torch.allclose(feats, expect, atol=1e-4)
    y = -torch.rand(3, 4) * 10
    assert torch.allclose(laplace_features(y), torch.exp(y / (-y).mean()))


def test_pkkd_pairs_adder_layers_with_teacher_convs() -> None:
    from autochip.compress import Policy, convert
    from autochip.compress.distill import Pkkd
    from autochip.compress.policy import LayerPolicy

    torch.manual_seed(5)
    teacher = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 3),
    )
    student = convert(teacher, Policy(default=LayerPolicy("adder", 8, 8)))
    pk = Pkkd(student, teacher)
    assert [name for name, _, _ in pk.pairs] == ["2", "5"]
    x = torch.rand(3, 1, 4, 4)
    student(x)
    teacher(x)
    loss = pk.loss()
    assert loss.item() > 0 and torch.isfinite(loss)
    loss.backward()
    assert student.get_submodule("2").weight.grad is not None
    pk.remove()
    student(x)
    assert pk.loss().item() == 0.0  # hooks removed: nothing recorded
