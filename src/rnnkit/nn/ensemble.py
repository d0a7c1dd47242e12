"""An ensemble: N networks of the same shape, trained side by side, predicting together.

Each member starts from its own random weights and draws its own dropout noise; all see the
same batches in the same order. The loss is the sum of the members' losses, so each member's
gradient is exactly the one it would get alone, and the Trainer clips each member's gradient on
its own (`clip_groups`); with Adam, whose update is per parameter, the members then take the
steps N separate runs would take, bar their random streams. The dev score, early stopping and
the saved weights are the ensemble's. Prediction combines the members' scores in the way the
task defines (`combine`: the mean of their probabilities for a classifier and a softmax tagger;
the mean of their potentials for a CRF tagger). Averaging independently trained networks cancels
part of each one's variance (Dietterich 2000; Hansen & Salamon 1990).
"""

from __future__ import annotations

from torch import Tensor, nn


class Ensemble(nn.Module):
    """members: networks of one class, with loss(batch, reduction) and a static combine(members, batch).
    It keeps the Trainer's TrainingModel contract (training.py) without importing it, as nn/ imports
    nothing of the app: loss, clip_groups and carry."""

    carry = None  # nothing carried from batch to batch (no language-model ensembles)

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def loss(self, batch, reduction: str = "sequence") -> tuple[Tensor, int]:
        """Σ_m L_m, and the number of items each member scored."""
        losses = [member.loss(batch, reduction) for member in self.members]
        return sum(loss for loss, _ in losses), losses[0][1]

    def predict(self, batch) -> list:
        return type(self.members[0]).combine(list(self.members), batch)

    def clip_groups(self) -> list[list[nn.Parameter]]:
        """The parameters each member clips its gradient over."""
        return [list(member.parameters()) for member in self.members]
