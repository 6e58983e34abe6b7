"""Agreement with pytorch-grad-cam and captum on the real offline model (EfficientNet-Lite0).

Peers run on a deep copy so that their constructors (``model.eval()``, permanent hooks)
cannot touch the model our engine uses.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

gradcam_lib = pytest.importorskip("pytorch_grad_cam")
captum_attr = pytest.importorskip("captum.attr")

LAYER = "features.8"


def corr(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.fixture(scope="module")
def peer_model(lite_explainer):
    return copy.deepcopy(lite_explainer.engine.model).eval()


PEERS = [
    ("gradcam", "GradCAM"),
    ("gradcam++", "GradCAMPlusPlus"),
    ("xgradcam", "XGradCAM"),
    ("layercam", "LayerCAM"),
]


@pytest.mark.parametrize(
    "ours, theirs, layer",
    [
        *[(o, t, LAYER) for o, t in PEERS],
        # features.6's maps cross zero (Grad-CAM++ there: see the next test)
        *[(o, t, "features.6") for o, t in PEERS if o != "gradcam++"],
    ],
)
@pytest.mark.parametrize("target", [285, 282])
def test_cam_family_matches_pytorch_grad_cam(
    lite_explainer, chelsea_tensor, peer_model, ours, theirs, target, layer
):
    """Also the order of ReLU and upsampling: upsampling first gave r = 0.90 at features.6."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cls = getattr(gradcam_lib, theirs)
    with cls(model=peer_model, target_layers=[peer_model.get_submodule(layer)]) as cam:
        expected = cam(input_tensor=chelsea_tensor, targets=[ClassifierOutputTarget(target)])[0]
    got = lite_explainer.explain(chelsea_tensor, ours, target, layer)
    assert got.heatmap.shape == expected.shape
    assert corr(got.heatmap, expected) >= 0.999


def test_gradcam_plus_plus_is_the_papers_formula_where_gradients_are_small(
    lite_explainer, chelsea_tensor, peer_model
):
    """At features.6 the squared gradients (~1e-6) are as small as the epsilon pytorch-grad-cam
    adds to the alpha denominator, which changes its map (r = 0.79 with ours); ours is eq. 19
    exactly, with alpha = 0 where the gradient is 0."""
    store = {}
    hook = peer_model.features[6].register_forward_hook(lambda m, i, o: store.update(a=o))
    try:
        logits = peer_model(chelsea_tensor)
    finally:
        hook.remove()
    acts = store["a"]
    (grads,) = torch.autograd.grad(logits[0, 285], acts)
    g2 = grads**2
    denominator = 2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * g2 * grads
    alpha = torch.where(grads != 0, g2 / torch.where(denominator != 0, denominator, 1.0), 0.0)
    weights = (alpha * grads.clamp(min=0)).sum(dim=(2, 3), keepdim=True)
    expected = (weights * acts).sum(dim=1)[0].detach().numpy()
    got = lite_explainer.explain(chelsea_tensor, "gradcam++", 285, "features.6")
    assert corr(got.raw, expected) >= 0.999  # (the engine's folded batch norms round otherwise)


@pytest.mark.parametrize("layer", ["features.6", "features.8"])
def test_hirescam_matches_pytorch_grad_cam(lite_explainer, chelsea_tensor, peer_model, layer):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    module = peer_model.get_submodule(layer)
    with gradcam_lib.HiResCAM(model=peer_model, target_layers=[module]) as cam:
        expected = cam(input_tensor=chelsea_tensor, targets=[ClassifierOutputTarget(282)])[0]
    got = lite_explainer.explain(chelsea_tensor, "hirescam", 282, layer)
    assert corr(got.heatmap, expected) >= 0.999
    gradcam = lite_explainer.explain(chelsea_tensor, "gradcam", 282, layer)
    if layer == "features.8":  # before global pooling the gradient is uniform: Grad-CAM
        np.testing.assert_allclose(got.raw, gradcam.raw, rtol=1e-4, atol=1e-6)
    else:  # elsewhere each position keeps its own gradient
        assert corr(got.raw, gradcam.raw) < 0.99


def test_eigencam_matches_pytorch_grad_cam_up_to_the_eigenvector_sign(
    lite_explainer, chelsea_tensor, peer_model
):
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    got = lite_explainer.explain(chelsea_tensor, "eigencam", 285, "features.6")
    with torch.no_grad():
        activations = peer_model.features[:7](chelsea_tensor).numpy()  # features.6's output
    theirs = get_2d_projection(activations)[0]
    assert got.raw.shape == theirs.shape
    assert abs(corr(got.raw, theirs)) >= 0.999  # theirs keeps the SVD's sign, either one


def test_vanilla_matches_captum_saliency(lite_explainer, chelsea_tensor, peer_model):
    expected = captum_attr.Saliency(peer_model).attribute(chelsea_tensor, target=285, abs=True)
    got = lite_explainer.explain(chelsea_tensor, "vanilla", 285)
    expected = expected[0].detach().numpy()
    assert corr(got.attribution, expected) >= 0.999
    assert corr(got.raw, expected.max(axis=0)) >= 0.999


def test_guided_backprop_matches_captum_with_relu6(lite_explainer, chelsea_tensor, peer_model, monkeypatch):
    from captum.attr._core import guided_backprop_deconvnet as gbd

    def register_relu_and_relu6(self, module):
        # captum hooks nn.ReLU only; EfficientNet-Lite uses ReLU6, which guided backprop covers
        if isinstance(module, (torch.nn.ReLU, torch.nn.ReLU6)):
            self.backward_hooks.extend(gbd._register_backward_hook(module, self._backward_hook, self))

    monkeypatch.setattr(gbd.ModifiedReluGradientAttribution, "_register_hooks", register_relu_and_relu6)
    expected = gbd.GuidedBackprop(peer_model).attribute(chelsea_tensor, target=282)
    got = lite_explainer.explain(chelsea_tensor, "guided_backprop", 282)
    assert corr(got.attribution, expected[0].detach().numpy()) >= 0.999
    plain = lite_explainer.explain(chelsea_tensor, "vanilla", 282)
    assert corr(got.raw, plain.raw) < 0.99  # guidance really changed the map


def test_integrated_gradients_matches_captum(lite_explainer, chelsea_tensor, peer_model):
    ig = captum_attr.IntegratedGradients(peer_model)
    expected = ig.attribute(chelsea_tensor, target=285, n_steps=16, internal_batch_size=16)
    got = lite_explainer.explain(chelsea_tensor, "integrated_gradients", 285, steps=16)
    assert corr(got.attribution, expected[0].detach().numpy()) >= 0.999


def test_smoothgrad_matches_captum_noise_tunnel_with_the_same_noise(
    lite_explainer, chelsea_tensor, peer_model
):
    seen = []
    handle = peer_model.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    try:
        tunnel = captum_attr.NoiseTunnel(captum_attr.Saliency(peer_model))
        torch.manual_seed(0)
        expected = tunnel.attribute(
            chelsea_tensor,
            nt_type="smoothgrad",
            nt_samples=8,
            nt_samples_batch_size=4,
            stdevs=0.3,
            target=285,
            abs=True,
        )
    finally:
        handle.remove()
    noise = torch.cat(seen) - chelsea_tensor
    assert noise.shape[0] == 8
    got = lite_explainer.explain(chelsea_tensor, "vanilla", 285, samples=8, noise_samples=noise)
    assert corr(got.attribution, expected[0].detach().numpy()) >= 0.999
