"""Dilated ("à trous") versions of classifiers, for the article "Grad-CAM and dilated convolution".

Removing the downsampling of a CNN and dilating the convolutions that follow keeps every
receptive field (and so the trained weights stay meaningful) while the feature maps keep a
finer resolution: a Grad-CAM map of the dilated VGG16 is 224x224 instead of 14x14.

* :func:`dilate` works on any network whose downsampling is done by ``Conv2d`` / ``MaxPool2d`` /
  ``AvgPool2d`` modules (VGG-style ``features`` Sequentials, ResNets, EfficientNet/MobileNet-style
  stages made of strided convs): every downsampling that runs after a chosen module is removed
  (strided convs get stride 1, pools become ``nn.Identity`` so that layer names are unchanged) and
  every later convolution's dilation is multiplied by the resolution factor its input gained
  (the DeepLab rule: a conv that used to see a grid ``m`` times coarser gets dilation ``m``),
  padding adjusted so that spatial size is preserved; 1x1 convs are left as they are.
  It returns a copy whose modules are its own (the input model is never modified) and whose
  weights are, by default, the input's very tensors (``share_weights``: a second VGG16 would
  be 528 MB more per kernel, a quarter of a Binder session).
* :func:`output_stride` / :func:`stride_report` measure the output stride of a layer
  (input size / feature size) before and after.
* :mod:`.dilated_vgg` builds the article's dilated VGG16 (same 13 convs and weights, no
  max-pooling in the body, one ``MaxPool2d(32)`` before the unchanged classifier).

Layer names are kept torchvision-like: torchvision VGG16 names are unchanged in the dilated
model (``features.29`` is still conv5_3's ReLU); the removed pools are ``nn.Identity`` at the
same indices, and the new ``MaxPool2d(32)`` is the module ``pool`` between ``features`` and
``avgpool``. See :data:`DILATED_VGG16_LAYER_NAMES`.
"""

from __future__ import annotations

from torch import nn

from ..errors import InvalidParameterError, Received, expected
from .copying import copy_modules
from .strides import (
    DOWNSAMPLERS,
    GLOBAL_POOLS,
    ShapeTrace,
    output_stride,
    pair,
    resolve_after,
    stride_of,
    stride_report,
)

__all__ = ["dilate", "output_stride", "stride_report"]

#: The article's dilated VGG16 lives in :mod:`.dilated_vgg`; these names resolve there.
_VGG_NAMES = {
    "VGG16_LAYER_NAMES",
    "DILATED_VGG16_LAYER_NAMES",
    "DILATED_VGG16_RATES",
    "DilatedVGG",
    "dilated_vgg16",
    "build_dilated_vgg16",
}


def __getattr__(name: str):
    if name in _VGG_NAMES:
        from . import dilated_vgg

        return getattr(dilated_vgg, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- dilate


def _unsupported(name: str, module: nn.Module, why: str) -> InvalidParameterError:
    return InvalidParameterError(
        expected(
            "module",
            "a 'same'-padded Conv2d, a MaxPool2d/AvgPool2d or a module that keeps spatial size",
            Received(f"one that {why}"),
            "choose a later 'after' or a CNN whose downsampling is done by strided convs or pools",
            problem=f"Cannot dilate {name} ({module!r})",
        )
    )


def _dilate_conv(name: str, conv: nn.Conv2d, mult: int) -> None:
    k = pair(conv.kernel_size)
    d0 = pair(conv.dilation)
    stride = pair(conv.stride)
    if getattr(conv, "pads_itself", False):
        # computes "SAME" padding from the input, kernel, stride and dilation at every call
        conv.stride = (1, 1)
        conv.dilation = (d0[0] * mult, d0[1] * mult)
        return
    if k == (1, 1):
        if conv.padding not in ((0, 0), 0, "valid", "same"):
            raise _unsupported(name, conv, "is a 1x1 conv with padding (changes the spatial size)")
        conv.stride = (1, 1)
        return
    if isinstance(conv.padding, str):
        if conv.padding != "same" or stride != (1, 1):
            raise _unsupported(name, conv, f"uses padding={conv.padding!r}")
        conv.dilation = (d0[0] * mult, d0[1] * mult)
        return
    p = pair(conv.padding)
    for dim in (0, 1):
        span = d0[dim] * (k[dim] - 1)
        if span % 2 or p[dim] != span // 2:
            raise _unsupported(name, conv, f"is not 'same'-padded (padding {p}, kernel {k}, dilation {d0})")
    if conv.padding_mode != "zeros" and mult > 1:
        # reflect/replicate padding cannot exceed the input size; still correct otherwise
        pass
    new_d = (d0[0] * mult, d0[1] * mult)
    conv.stride = (1, 1)
    conv.dilation = new_d
    conv.padding = (new_d[0] * (k[0] - 1) // 2, new_d[1] * (k[1] - 1) // 2)


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def dilate(
    model: nn.Module,
    after: str | int | None = None,
    *,
    probe_size: int = 64,
    verify: bool = True,
    share_weights: bool = True,
) -> nn.Module:
    """Return a copy of ``model`` with all downsampling after module ``after`` removed.

    Args:
        model: a CNN whose downsampling is done by ``Conv2d`` (stride > 1), ``MaxPool2d`` or
            ``AvgPool2d`` modules (not modified).
        after: the last module whose downsampling is kept: a module name (``"features.16"``,
            ``"layer2"``, ``"features.3"``), an index into ``model.features`` (VGG-style), or
            ``None`` to remove every downsampling (the article's dilated VGG16).
        probe_size: side of the dummy input used to measure each layer's resolution (the
            factor by which each later conv's dilation is multiplied). A multiple of the
            model's total stride; 64 suits most ImageNet CNNs.
        verify: run the dilated copy on the probe and check that every feature map after
            ``after`` keeps the resolution of ``after``'s output.
        share_weights: the copy's parameters and buffers are the model's own tensors (no
            memory for a second set; training one trains both). False: copies of them.

    Strided convs get stride 1 and pools (stride > 1) become ``nn.Identity`` (module names are
    unchanged); a conv whose input was ``m`` times coarser than ``after``'s output gets its
    dilation multiplied by ``m`` and padding ``dilation * (k - 1) / 2`` (1x1 convs unchanged).
    Global (adaptive) pools are kept.

    Raises:
        UnknownLayerError: ``after`` is not a module name of ``model``.
        InvalidParameterError: a module after ``after`` cannot be dilated (not 'same'-padded,
            downsampling done in ``forward`` code, a 3-D conv...), or nothing is left to dilate.
    """
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(expected("model", "a torch.nn.Module", model))
    after_name = resolve_after(model, after)
    trace = ShapeTrace(model, probe_size)
    probe = trace.probe
    if after_name is None:
        start, cap = 0, 1
    else:
        if after_name not in trace.ends:
            raise InvalidParameterError(
                expected(
                    "'after'",
                    "a module that runs in forward",
                    Received(f"{after_name!r} that did not run on a {probe}x{probe} probe"),
                )
            )
        start = trace.ends[after_name]
        hw = trace.outputs.get(after_name)
        cap = stride_of(probe, hw) if hw else None
        if not cap:
            raise InvalidParameterError(
                expected(
                    "'after'",
                    "a module with a spatial (N, C, H, W) output",
                    Received(f"{after_name!r} whose output is not 4-D"),
                )
            )

    clone = copy_modules(model, share_weights)
    names_in_clone = dict(clone.named_modules())
    global_sizes: set[tuple] = set()
    seen: set[int] = set()
    changed = 0
    for position, (name, module, hin, hout) in enumerate(trace.leaves, start=1):
        if position <= start:
            continue
        if isinstance(module, GLOBAL_POOLS):
            if hout:
                global_sizes.add(tuple(hout))
            continue
        if id(module) in seen:
            if isinstance(module, DOWNSAMPLERS):
                raise _unsupported(name, module, "is called more than once in forward")
            continue
        seen.add(id(module))
        if hin is None or hout is None:
            continue
        if not hin or (tuple(hin) in global_sizes) or hin == (1, 1):
            mult = 1  # after a global pool (squeeze-excitation branches...): nothing to dilate
            trunk = False
        else:
            s_in = stride_of(probe, hin)
            if s_in % cap:
                raise InvalidParameterError(
                    expected(
                        "probe_size",
                        f"its input stride to be a multiple of {cap}",
                        Received(f"stride {probe / hin[0]:.3g} on a {probe}x{probe} probe"),
                        "pass a probe_size= that is a multiple of the model's total stride",
                        problem=f"Cannot dilate {name}",
                    )
                )
            mult = s_in // cap
            trunk = True
        target = names_in_clone[name]
        if isinstance(module, nn.Conv2d):
            before = (target.stride, target.dilation, target.padding)
            if trunk:
                _dilate_conv(name, target, mult)
            changed += before != (target.stride, target.dilation, target.padding)
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            if not trunk:
                continue
            stride = pair(module.stride if module.stride is not None else module.kernel_size)
            if stride != (1, 1):
                _set_module(clone, name, nn.Identity())
                changed += 1
            elif mult > 1:
                if (
                    isinstance(module, nn.MaxPool2d)
                    and pair(module.padding) == tuple((k - 1) // 2 for k in pair(module.kernel_size))
                    and all(k % 2 for k in pair(module.kernel_size))
                ):
                    target.dilation = mult
                    target.padding = tuple(mult * (k - 1) // 2 for k in pair(module.kernel_size))
                    changed += 1
                elif pair(module.kernel_size) != (1, 1):
                    raise _unsupported(name, module, "is a stride-1 pool that would need dilation")
        elif trunk and hout and tuple(hout) != tuple(hin):
            raise _unsupported(name, module, f"changes the spatial size {tuple(hin)} -> {tuple(hout)}")
        elif isinstance(module, (nn.Conv1d, nn.Conv3d, nn.ConvTranspose2d)):
            raise _unsupported(name, module, "is not a Conv2d")
    if changed == 0:
        raise InvalidParameterError(
            expected(
                "'after'",
                f"downsampling (strided Conv2d, MaxPool2d/AvgPool2d) after {after_name or 'the input'}",
                Received(f"{type(model).__name__} with none there"),
                "choose an earlier 'after'",
                problem="Nothing to dilate",
            )
        )
    if verify:
        _verify(clone, after_name, cap, probe)
    return clone


def _verify(clone: nn.Module, after_name: str | None, cap: int, probe: int) -> None:
    trace = ShapeTrace(clone, probe)
    start = 0 if after_name is None else trace.ends.get(after_name, 0)
    side = (-(-probe // cap),) * 2
    allowed = {side, (1, 1)}
    for position, (name, module, hin, hout) in enumerate(trace.leaves, start=1):
        if position <= start:
            continue
        if isinstance(module, GLOBAL_POOLS):
            if hout:
                allowed.add(tuple(hout))
            continue
        for hw in (hin, hout):
            if hw and tuple(hw) not in allowed:
                raise InvalidParameterError(
                    expected(
                        "model",
                        f"every feature map after {after_name or 'the input'} to stay "
                        f"{side[0]}x{side[1]} on a {probe}x{probe} probe",
                        Received(f"{tuple(hw)} at {name}"),
                        "its downsampling is done in forward code (not by a Conv2d/pool module), "
                        "which dilate cannot change",
                        problem=f"Cannot dilate {type(clone).__name__}",
                    )
                )


# --------------------------------------------------------------------------- VGG16
