"""torchvision's own preprocessing as ``preprocess`` (v1, v2, Weights.transforms(), a callable
on PIL images), ``weights=`` metadata, and maps drawn over the image the model saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T
from torchvision.models import ResNet18_Weights
from torchvision.transforms import functional as TF
from torchvision.transforms import v2

import cam_widgets as cw
from cam_widgets.data.named import load_named
from cam_widgets.errors import InvalidParameterError


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()


def _cropped(size_resize, size_crop):
    photo = Image.fromarray(load_named("chelsea"))
    return np.asarray(TF.center_crop(TF.resize(photo, size_resize), size_crop))


def test_weights_transforms_give_the_same_input_as_torchvision(resnet):
    transform = ResNet18_Weights.DEFAULT.transforms()
    explainer = cw.Explainer(resnet, preprocess=transform)
    prepared = explainer.prepare("chelsea")
    expected = transform(Image.fromarray(load_named("chelsea")))
    torch.testing.assert_close(prepared.tensor[0], expected)
    assert explainer.spec.input_size == (224, 224)
    # the map is drawn over the 256 -> 224 centre crop, not the photo squeezed to 224x224
    seen = np.asarray(prepared.rgb, dtype=int)
    assert np.abs(seen - _cropped(256, 224).astype(int)).max() <= 1
    result = explainer.explain("chelsea", "gradcam", 285)
    assert result.heatmap.shape == (224, 224) and result.image.shape == (224, 224, 3)


def test_a_v2_pipeline_sets_the_input_size_and_range(resnet):
    transform = v2.Compose(
        [
            v2.Resize(160),
            v2.CenterCrop(128),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.5] * 3, [0.25] * 3),
        ]
    )
    explainer = cw.Explainer(resnet, preprocess=transform)
    assert explainer.spec.input_size == (128, 128)
    assert explainer.spec.input_range == pytest.approx((-2.0, 2.0))
    result = explainer.explain("chelsea", "gradcam", 285)
    assert np.array_equal(result.image, _cropped(160, 128))


def test_a_plain_callable_on_pil_images_and_one_on_arrays(resnet):
    on_pil = cw.Explainer(resnet, preprocess=lambda im: TF.to_tensor(im.resize((96, 96))))
    assert on_pil.spec.input_size == (96, 96)
    assert on_pil.explain("chelsea").heatmap.shape == (96, 96)
    on_array = cw.Explainer(
        resnet,
        input_size=(64, 64),
        preprocess=lambda rgb: torch.from_numpy(rgb).permute(2, 0, 1).float() / 255,
    )
    assert on_array.spec.input_size == (64, 64)
    assert on_array.explain("chelsea").heatmap.shape == (64, 64)


def test_weights_give_labels_and_preprocessing(resnet):
    explainer = cw.Explainer(resnet, weights=ResNet18_Weights.IMAGENET1K_V1)
    assert list(explainer.labels) == ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    assert explainer.spec.input_size == (224, 224)
    assert explainer.explain("chelsea", "gradcam", "tiger cat").class_id == 282


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(preprocess=lambda im: np.zeros((3, 8, 8))), "float tensor (3, H, W)"),
        (dict(preprocess=v2.Compose([v2.Resize(64), v2.PILToTensor()])), "float tensor (3, H, W)"),
        (dict(weights="IMAGENET1K_V1"), "torchvision weights member"),
    ],
)
def test_bad_preprocessing_gets_one_line(resnet, kwargs, words):
    with pytest.raises(InvalidParameterError) as info:
        cw.Explainer(resnet, **kwargs)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_transform_without_resize_takes_the_input_size(resnet):
    transform = T.Compose([T.ToTensor(), T.Normalize([0.5] * 3, [0.25] * 3)])
    explainer = cw.Explainer(resnet, preprocess=transform, input_size=(96, 96))
    result = explainer.explain("astronaut", "gradcam", 1)
    assert explainer.spec.input_size == (96, 96) and result.heatmap.shape == (96, 96)


def test_a_transform_whose_size_follows_the_photo_is_one_line(resnet):
    explainer = cw.Explainer(resnet, preprocess=T.Compose([T.Resize(64), T.ToTensor()]))
    with pytest.raises(cw.CamWidgetsError, match="fixed size") as info:
        explainer.explain("coffee")  # 400x600: 64x96, the probe gave 64x80
    assert "\n" not in str(info.value)


def test_a_random_transform_is_refused(resnet):
    with pytest.raises(InvalidParameterError, match="different tensor each time"):
        cw.Explainer(resnet, preprocess=T.Compose([T.RandomHorizontalFlip(), T.ToTensor()]))
