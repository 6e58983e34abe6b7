"""Localization, faithfulness and sanity scores over explanations, batched.

Localization (numpy, over one map or a batch of maps against boxes or masks):
:func:`pointing_game`, :func:`energy_pointing_game`, :func:`iou_at_thresholds`.
Faithfulness (batched forwards on the explainer's device under ``no_grad``):
:func:`average_drop_increase`, :func:`deletion_insertion`.
Sanity (on a deep copy of the model): :func:`randomization_sanity`.
"""
from .faithfulness import average_drop_increase, blur_baseline, deletion_insertion, trapezoid_auc
from .localization import energy_pointing_game, iou_at_thresholds, pointing_game
from .sanity import pearson, randomization_sanity, randomization_steps, spearman

__all__ = [
    "average_drop_increase",
    "blur_baseline",
    "deletion_insertion",
    "energy_pointing_game",
    "iou_at_thresholds",
    "pearson",
    "pointing_game",
    "randomization_sanity",
    "randomization_steps",
    "spearman",
    "trapezoid_auc",
]
