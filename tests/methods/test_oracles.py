"""Every method against hand-computed values on TinyNet (see conftest for its weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cam_widgets.engine import count_hooks
from cam_widgets.errors import MethodNotApplicableError
from conftest import A_BIAS, B, TinyNet, V, W, tiny_input

Z = 16.0


def relu(a):
    return np.maximum(a, 0)


def forward_np(x):
    """x (3, 4, 4) -> pre-activation (2, 4, 4), activation, logits (3,)."""
    pre = np.einsum("cd,dij->cij", V, x) + A_BIAS[:, None, None]
    act = relu(pre)
    return pre, act, W @ act.mean(axis=(1, 2)) + B


def input_grad_np(x, k, guided=False):
    pre, _, _ = forward_np(x)
    at_relu = W[k] / Z  # d logit_k / d activation, the same at every position
    if guided:
        at_relu = relu(at_relu)
    return np.einsum("c,cij,cd->dij", at_relu, (pre > 0).astype(np.float32), V)


X = tiny_input()[0].numpy()


def run(explainer, method, k, **params):
    return explainer.explain(tiny_input(), method, k, "relu", **params)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_cam_family_closed_forms(tiny_explainer, k):
    _, act, _ = forward_np(X)
    sums = act.sum(axis=(1, 2))
    g = W[k] / Z
    expected = {
        "cam": np.einsum("c,cij->ij", W[k], act),
        "gradcam": np.einsum("c,cij->ij", g, act),
        "xgradcam": np.einsum("c,cij->ij", np.where(sums != 0, g, 0), act),
        "layercam": np.einsum("c,cij->ij", relu(g), act),
        "hirescam": np.einsum("c,cij->ij", g, act),  # g is uniform over positions here
    }
    alpha = g**2 / np.where(2 * g**2 + sums * g**3 != 0, 2 * g**2 + sums * g**3, 1)
    expected["gradcam++"] = np.einsum("c,cij->ij", Z * alpha * relu(g), act)
    for method, want in expected.items():
        got = run(tiny_explainer, method, k)
        np.testing.assert_allclose(got.raw, want, rtol=1e-5, atol=1e-6, err_msg=method)


def eigencam_np(act):
    """First principal component of the centred (positions x channels) activations, its sign
    the one whose map agrees with the mean positive activation."""
    positions = act.reshape(act.shape[0], -1).T
    centred = positions - positions.mean(axis=0)
    projection = centred @ np.linalg.svd(centred)[2][0]
    mean_map = relu(positions).mean(axis=1)
    if np.dot(projection - projection.mean(), mean_map - mean_map.mean()) < 0:
        projection = -projection
    return projection.reshape(act.shape[1:])


def test_eigencam_closed_form_is_the_same_for_every_class(tiny_explainer):
    _, act, _ = forward_np(X)
    want = eigencam_np(act)
    for k in range(3):
        np.testing.assert_allclose(run(tiny_explainer, "eigencam", k).raw, want, rtol=1e-4, atol=1e-5)
    both = tiny_explainer.explain_classes(tiny_input(), [0, 2], "eigencam", "relu")
    np.testing.assert_allclose(both[0].raw, both[1].raw)


class FixedActivations(nn.Module):
    """A layer whose output is a given (C, h, w) tensor, whatever the input."""

    def __init__(self, act: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("act", torch.tensor(act)[None])

    def forward(self, x):
        return self.act + 0 * x.mean()


@pytest.mark.parametrize("flip", [1.0, -1.0])
def test_eigencam_map_is_bright_where_the_layer_is_active(flip):
    """An eigenvector's sign is arbitrary: unfixed, half the time the map is the complement
    of what is active (pytorch-grad-cam keeps the SVD's sign). Both channel signs of the
    active square must give a map that ranks it first."""
    from collections import OrderedDict

    from cam_widgets import Explainer

    act = np.zeros((2, 4, 4), np.float32)
    act[0, 1:3, 1:3], act[1, 1:3, 1:3] = 3.0, 1.0 * flip  # one active square
    act[1, 0, 0] = 0.5
    net = nn.Sequential(
        OrderedDict(
            features=FixedActivations(act),
            pool=nn.AdaptiveAvgPool2d(1),
            flat=nn.Flatten(),
            fc=nn.Linear(2, 3),
        )
    )
    got = Explainer(net, input_size=(4, 4), labels=["a", "b", "c"], device="cpu").explain(
        tiny_input(), "eigencam", 0, "features"
    )
    np.testing.assert_allclose(got.raw, eigencam_np(act), rtol=1e-4, atol=1e-5)
    square = got.raw[1:3, 1:3]
    outside = np.delete(got.raw.ravel(), [5, 6, 9, 10])
    assert square.min() > outside.max()


def fixed_layer_net(act: np.ndarray, head: nn.Module):
    """An Explainer over a net whose layer "features" outputs ``act``, then ``head``."""
    from collections import OrderedDict

    from cam_widgets import Explainer

    net = nn.Sequential(OrderedDict(features=FixedActivations(act), head=head))
    return Explainer(net, input_size=(4, 4), labels=["a", "b", "c"], device="cpu")


def test_eigencam_agrees_before_and_after_a_relu():
    """Before a ReLU some channels are negative where the object is: the plain channel mean
    then points the wrong way and the map came out as the complement of the one after it."""
    act = np.zeros((2, 4, 4), np.float32)
    act[0, 1:3, 1:3], act[1, 1:3, 1:3] = 1.0, -4.0  # the object, as a BatchNorm may give it
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    maps = [
        fixed_layer_net(a, head).explain(tiny_input(), "eigencam", 0, "features").heatmap
        for a in (act, relu(act))
    ]
    for m in maps:  # bright on the object in both
        assert m[1:3, 1:3].min() > np.delete(m.ravel(), [5, 6, 9, 10]).max()


def test_eigencam_of_activations_that_do_not_vary_is_flagged_flat():
    rng = np.random.default_rng(0)
    act = (10 + 1e-6 * rng.standard_normal((2, 4, 4))).astype(np.float32)  # rounding noise
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    got = fixed_layer_net(act, head).explain(tiny_input(), "eigencam", 0, "features")
    assert got.status.flat and not got.heatmap.any()


def test_hirescam_keeps_each_positions_own_gradient():
    """Behind a flatten + linear head the gradient differs per position: HiResCAM is then
    sum_c g_cij A_cij, not Grad-CAM's spatial mean of g times A."""
    rng = np.random.default_rng(1)
    act = rng.random((2, 4, 4)).astype(np.float32)
    linear = nn.Linear(32, 3)
    head = nn.Sequential(nn.Flatten(), linear)
    explainer = fixed_layer_net(act, head)
    g = linear.weight.detach().numpy()[2].reshape(2, 4, 4)  # d logit_2 / d act
    got = explainer.explain(tiny_input(), "hirescam", 2, "features").raw
    np.testing.assert_allclose(got, (g * act).sum(axis=0), rtol=1e-5, atol=1e-6)
    gradcam = explainer.explain(tiny_input(), "gradcam", 2, "features").raw
    np.testing.assert_allclose(
        gradcam, np.einsum("c,cij->ij", g.mean(axis=(1, 2)), act), rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(got, gradcam)


def test_gradcam_is_cam_over_z_and_heatmap_normalised(tiny_explainer):
    cam = run(tiny_explainer, "cam", 0)
    grad = run(tiny_explainer, "gradcam", 0)
    np.testing.assert_allclose(grad.raw * Z, cam.raw, rtol=1e-5)
    np.testing.assert_allclose(grad.heatmap, cam.heatmap, atol=1e-6)
    clipped = relu(cam.raw)
    np.testing.assert_allclose(cam.heatmap, (clipped - clipped.min()) / np.ptp(clipped), atol=1e-6)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_pixel_methods_closed_forms(tiny_explainer, k):
    plain, guided = input_grad_np(X, k), input_grad_np(X, k, guided=True)
    van = run(tiny_explainer, "vanilla", k)
    np.testing.assert_allclose(van.raw, np.abs(plain).max(axis=0), rtol=1e-5, atol=1e-7)
    gb = run(tiny_explainer, "guided_backprop", k)
    np.testing.assert_allclose(gb.attribution, guided, rtol=1e-5, atol=1e-7)
    _, act, _ = forward_np(X)
    cam = relu(np.einsum("c,cij->ij", W[k] / Z, act))
    ggc = run(tiny_explainer, "guided_gradcam", k)
    np.testing.assert_allclose(ggc.attribution, guided * cam[None], rtol=1e-5, atol=1e-7)


def test_scorecam_closed_form(tiny_explainer):
    _, act, _ = forward_np(X)
    lo, hi = act.min(axis=(1, 2), keepdims=True), act.max(axis=(1, 2), keepdims=True)
    masks = np.where(hi > lo, (act - lo) / np.where(hi > lo, hi - lo, 1), 0)
    scores = np.array([forward_np(X * m[None])[2][1] for m in masks])
    weights = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    got = run(tiny_explainer, "scorecam", 1)
    np.testing.assert_allclose(got.raw, np.einsum("c,cij->ij", weights, act), rtol=1e-5)


def test_scorecam_scores_dead_channels_with_one_blank_forward():
    """Channels 1 and 3 are dead (all zero after the ReLU), channel 2 is a constant 2: all
    three mask the image to zeros. Brute force in float64 over every channel, as defined."""
    from torch import nn

    from cam_widgets import Explainer

    gen = torch.Generator().manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    ).eval()
    with torch.no_grad():
        net[0].weight.copy_(torch.randn(4, 3, 3, 3, generator=gen))
        net[0].weight[1:4] = 0
        net[0].bias.copy_(torch.tensor([0.1, -5.0, 2.0, -1.0]))
        net[4].weight.copy_(torch.randn(3, 4, generator=gen))
    image = torch.rand(1, 3, 8, 8, generator=gen)
    explainer = Explainer(net, input_size=(8, 8), labels=["a", "b", "c"], device="cpu", channels_last=False)
    rows = []
    scores = explainer.engine.scores
    explainer.engine.scores = lambda inputs: (rows.append(len(inputs)), scores(inputs))[1]
    got = explainer.explain(image[0], "scorecam", 2, "1")
    assert sum(rows) == 2  # channel 0, and one blank input for the three constant channels

    reference = net.double()
    x = image.double()
    acts = reference[1](reference[0](x))[0]
    masks = torch.nn.functional.interpolate(acts[:, None], size=(8, 8), mode="bilinear", align_corners=False)[
        :, 0
    ]
    flat = masks.flatten(1)
    lo, hi = flat.min(1).values[:, None, None], flat.max(1).values[:, None, None]
    masks = torch.where(hi > lo, (masks - lo) / torch.where(hi > lo, hi - lo, 1.0), 0.0)
    with torch.no_grad():
        s = torch.stack([reference(x * m[None, None])[0, 2] for m in masks])
    expected = torch.einsum("c,cij->ij", torch.softmax(s, 0), acts).detach().numpy()
    np.testing.assert_allclose(got.raw, expected, rtol=1e-5, atol=1e-6)


def test_integrated_gradients_exact_integral_and_completeness(tiny_explainer):
    k = 0
    lin = np.einsum("cd,dij->cij", V, X)
    # fraction of alpha in [0, 1] where alpha * lin + a > 0, exactly
    with np.errstate(divide="ignore", invalid="ignore"):
        cut = -A_BIAS[:, None, None] / lin
    frac = np.where(lin > 0, 1 - np.clip(cut, 0, 1), np.clip(cut, 0, 1))
    frac = np.where(lin == 0, (A_BIAS[:, None, None] > 0) * 1.0, frac)
    exact = X * np.einsum("c,cij,cd->dij", W[k] / Z, frac, V)
    got = run(tiny_explainer, "integrated_gradients", k, steps=400)
    np.testing.assert_allclose(got.attribution, exact, atol=2e-3)
    completeness = forward_np(X)[2][k] - forward_np(np.zeros_like(X))[2][k]
    assert abs(got.attribution.sum() - completeness) < 2e-3


def test_smoothgrad_with_given_noise_is_the_mean_of_vanilla_maps(tiny_explainer):
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.3, size=(5, 3, 4, 4)).astype(np.float32)
    maps = np.stack([np.abs(input_grad_np(X + n, 2)).max(axis=0) for n in noise])
    got = run(
        tiny_explainer,
        "vanilla",
        2,
        samples=5,
        noise=0.1,
        noise_samples=torch.from_numpy(noise),
        snapshots=[1, 2, 5],
        batch_size=2,
    )
    np.testing.assert_allclose(got.raw, maps.mean(axis=0), rtol=1e-5, atol=1e-7)
    for count in (1, 2, 5):
        want = maps[:count].mean(axis=0)
        want = (want - want.min()) / np.ptp(want)
        np.testing.assert_allclose(got.snapshots[count], want, atol=1e-5)


def test_smoothgrad_seed_is_reproducible_and_private(tiny_explainer):
    torch.manual_seed(123)
    before = torch.rand(1)
    a = run(tiny_explainer, "gradcam", 0, samples=6, noise=0.2, seed=7)
    b = run(tiny_explainer, "gradcam", 0, samples=6, noise=0.2, seed=7, batch_size=4)
    np.testing.assert_allclose(a.raw, b.raw, rtol=1e-6)
    torch.manual_seed(123)
    assert torch.rand(1) == before  # the global RNG was not consumed


def test_gradcam_plus_plus_with_uniform_alpha_is_gradcam(lite_explainer, chelsea_tensor):
    grad = lite_explainer.explain(chelsea_tensor, "gradcam", 285)
    plus = lite_explainer.explain(chelsea_tensor, "gradcam++", 285, alpha="uniform", positive_gradients=False)
    np.testing.assert_allclose(plus.raw, grad.raw, rtol=1e-5, atol=1e-6)
    paper = lite_explainer.explain(chelsea_tensor, "gradcam++", 285)
    assert np.corrcoef(paper.raw.ravel(), grad.raw.ravel())[0, 1] < 0.9999  # really different


def test_several_classes_in_one_call_equal_separate_calls(tiny_explainer):
    from cam_widgets import Explainer
    from conftest import TinyNet

    together = tiny_explainer.explain_classes(tiny_input(), [0, 1, 2], "gradcam++", "relu")
    for k, result in enumerate(together):
        fresh = Explainer(TinyNet(), input_size=(4, 4), labels=["a", "b", "c"])
        alone = run(fresh, "gradcam++", k)
        np.testing.assert_allclose(result.raw, alone.raw, rtol=1e-6)
        assert result.class_id == k


class FunctionalReluNet(nn.Module):
    """TinyNet's weights, its ReLU called as a function (no ReLU module for hooks to find),
    then scaled by ``sign`` in place (a later in-place op on the ReLU's output)."""

    def __init__(self, relu_call, sign: float = 1.0) -> None:
        super().__init__()
        tiny = TinyNet()
        self.conv, self.pool, self.fc = tiny.conv, tiny.pool, tiny.fc
        self.relu_call, self.sign = relu_call, sign

    def forward(self, x):
        activation = self.relu_call(self.conv(x))
        if self.sign != 1.0:
            activation.mul_(self.sign)
        return self.fc(self.pool(activation).flatten(1))


@pytest.mark.parametrize(
    "relu_call,sign",
    [
        (F.relu, 1.0),
        (torch.relu, 1.0),
        (lambda a: a.relu(), 1.0),
        (lambda a: F.relu(a, inplace=True), 1.0),
        (lambda a: F.hardtanh(a, 0.0, 6.0), 1.0),
        (F.relu6, 1.0),
        # an in-place op after the call (a ReLU's own backward forbids it: it keeps its output;
        # hardtanh's keeps its input): the ReLU's node is guided, not the op's
        (lambda a: F.hardtanh(a, 0.0, 6.0), -1.0),
        (F.relu6, -1.0),
    ],
    ids=[
        "F.relu",
        "torch.relu",
        "Tensor.relu",
        "F.relu-inplace",
        "hardtanh-0-6",
        "F.relu6",
        "hardtanh-then-in-place",
        "F.relu6-then-in-place",
    ],
)
def test_guided_backprop_guides_relu_called_as_a_function(relu_call, sign):
    from cam_widgets import Explainer

    explainer = Explainer(FunctionalReluNet(relu_call, sign), input_size=(4, 4), labels=["a", "b", "c"])
    pre, _, _ = forward_np(X)
    for k in range(3):
        # d logit_k / d ReLU output is sign * W[k] / Z; guided keeps its positive part
        at_relu = relu(sign * W[k] / Z)
        want = np.einsum("c,cij,cd->dij", at_relu, (pre > 0).astype(np.float32), V)
        got = explainer.explain(tiny_input(), "guided_backprop", k)
        np.testing.assert_allclose(got.attribution, want, rtol=1e-5, atol=1e-7)
    assert count_hooks(explainer.engine.model) == 0


def test_hardtanh_that_is_not_a_relu_is_not_guided():
    from cam_widgets import Explainer

    net = FunctionalReluNet(lambda a: F.hardtanh(a, -1.0, 1.0))
    with pytest.raises(MethodNotApplicableError, match="ReLU"):
        Explainer(net, input_size=(4, 4), labels=["a", "b", "c"]).explain(tiny_input(), "guided_backprop", 0)


def test_recording_relu_calls_never_changes_what_the_model_computes():
    """An in-place ReLU's output is its input tensor: a later in-place op on it must reach
    every alias, as without the explainer (no copy is passed on)."""
    from cam_widgets import Explainer

    class Aliasing(FunctionalReluNet):
        def forward(self, x):
            a = self.conv(x)
            F.relu(a, inplace=True).mul_(-1.0)  # through the alias returned by the call
            return self.fc(self.pool(a).flatten(1))

    net = Aliasing(F.relu)
    with torch.no_grad():
        want = torch.softmax(net(tiny_input()), dim=1)[0]
    explainer = Explainer(net, input_size=(4, 4), labels=["a", "b", "c"])
    got = {p.class_id: p.probability for p in explainer.predict(tiny_input(), top=3)}
    np.testing.assert_allclose([got[k] for k in range(3)], want.numpy(), rtol=1e-5)
    assert explainer.engine._relu_functions
