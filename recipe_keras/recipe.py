"""The recipe's items (Karpathy's six steps, ids R1.1 to R6.3, as the README's coverage
table lists them) as data: id, advice, step, and the target that runs it.

The HTML report lists every id with a verdict; an id no report covers yet says
which ``make`` target would cover it, or that recipe-keras does not yet.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ITEMS", "STEPS", "Item"]


class Item(NamedTuple):
    recipe_id: str
    advice: str
    # The make target that produces a verdict for it; "" when none exists yet.
    target: str


STEPS = {
    "R1": "Become one with the data",
    "R2": "End-to-end skeleton and dumb baselines",
    "R3": "Overfit",
    "R4": "Regularize",
    "R5": "Tune",
    "R6": "Squeeze out the juice",
}

ITEMS = [
    Item("R1.1", "scan many examples by eye", "make inspect"),
    Item("R1.2", "know the distribution, find imbalance and bias", "make inspect"),
    Item("R1.3", "find repeated examples", "make inspect"),
    Item("R1.4", "find broken examples and bad labels", "make inspect"),
    Item("R1.5", "sort and filter by simple statistics", "make inspect"),
    Item("R1.6", "noisy labels", "make inspect"),
    Item("R1.7", "how much detail is needed", "make inspect"),
    Item("R1.8", "look at what the net gets wrong", "make train, then make inspect"),
    Item("R2.1", "fix the random seed", "make check"),
    Item("R2.2", "simplify: no augmentation yet", "make train"),
    Item("R2.3", "evaluate on the whole test set", "make train"),
    Item("R2.4", "verify the loss at init", "make check"),
    Item("R2.5", "initialise well", "make check"),
    Item("R2.6", "human baseline", "make human-sheet, then make human-score"),
    Item("R2.7", "input-independent baseline", "make check"),
    Item("R2.8", "overfit one batch", "make check"),
    Item("R2.9", "verify decreasing training loss; more capacity fits better", "make check"),
    Item("R2.10", "visualise just before the net", "make check"),
    Item("R2.11", "visualise prediction dynamics", "make check"),
    Item("R2.12", "use backprop to chart dependencies", "make check"),
    Item("R2.13", "special case first, then generalise", "make check"),
    Item("R3.1", "don't be a hero: copy a proven architecture", "make train"),
    Item("R3.2", "Adam with lr 3e-4 is safe", "make train"),
    Item("R3.3", "add complexity one thing at a time", "make ladder"),
    Item("R3.4", "don't trust default LR decay", "make train"),
    Item("R4.1", "get more data", "make learning-curve"),
    Item("R4.2", "data augmentation", "make train (data.augment)"),
    Item(
        "R4.3",
        "creative augmentation / synthetic data",
        "make train (data.mix, data.augment randaugment)",
    ),
    Item("R4.4", "pretrain", "make train (model.name = resnet50, model.pretrained)"),
    Item("R4.5", "stick with supervised learning", ""),
    Item("R4.6", "smaller input dimensionality", "make ladder (data.image_size)"),
    Item("R4.7", "smaller model", "make ladder (model.width)"),
    Item("R4.8", "smaller batch size", "make ladder (data.batch_size)"),
    Item("R4.9", "dropout", "make train (model.dropout)"),
    Item("R4.10", "weight decay", "make train (train.weight_decay)"),
    Item("R4.11", "early stopping", "make train (train.early_stopping_patience)"),
    Item("R4.12", "try a larger model", "make ladder (model.width, train.early_stopping_patience)"),
    Item("R4.13", "visualise first-layer weights and activations", "make train"),
    Item("R5.1", "random search, not grid search", "make tune"),
    Item(
        "R5.2",
        "Bayesian optimisation where it helps",
        "make tune (algorithm bayesian or hyperband)",
    ),
    Item("R5.3", "many machines", ""),
    Item("R6.1", "ensembles", "make ensemble"),
    Item("R6.2", "distillation", "make distill"),
    Item("R6.3", "leave it training", "make train"),
]
