"""Localization, faithfulness and sanity scores over explanations, batched.

Localization (numpy, over one map or a batch of maps against boxes or masks):
:func:`pointing_game`, :func:`energy_pointing_game`, :func:`iou_at_thresholds`.
Faithfulness (batched forwards on the explainer's device under ``no_grad``):
:func:`average_drop_increase`, :func:`deletion_insertion`.
Sanity (on a deep copy of the model): :func:`randomization_sanity`.
At scale (a folder or Dataset through a DataLoader, resumable JSONL, torch.distributed):
:func:`evaluate`, :func:`evaluate_distributed`, :func:`run_distributed`.
"""

from .distributed import evaluate_distributed, run_distributed
from .evaluate import ImageFolderDataset, evaluate, summarize
from .faithfulness import average_drop_increase, blur_baseline, deletion_insertion, trapezoid_auc
from .localization import energy_pointing_game, iou_at_thresholds, pointing_game
from .sanity import pearson, randomization_sanity, randomization_steps, spearman

__all__ = [
    "ImageFolderDataset",
    "evaluate",
    "evaluate_distributed",
    "run_distributed",
    "summarize",
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
