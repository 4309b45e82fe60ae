"""The listwise ranking loss: within one visit (a user's impressions with no long pause), the clicked videos
should score above the ones shown beside them and passed over.

A pointwise loss learns how often a video is clicked over all visits; a visit that clicked nothing, or
everything, says nothing about which of its videos the user preferred. The listwise loss reads only the
visits that chose (at least one click and one non-click), and learns the choice itself.
"""

from __future__ import annotations

import torch


def listwise_loss(logits: torch.Tensor, click: torch.Tensor, visit: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy of each clicked row against every row of its visit (ListNet's top-one loss):
    -mean over a visit's clicks of (s_i - logsumexp of the visit's scores), averaged over the visits with a
    click and a non-click. Zero when the batch has no such visit. logits, click, visit: [N]."""
    _, index = torch.unique(visit, return_inverse=True)
    n = int(index.max()) + 1 if len(index) else 0
    clicked = (click > 0.5).to(logits.dtype)
    clicks = logits.new_zeros(n).index_add_(0, index, clicked)
    rows = logits.new_zeros(n).index_add_(0, index, torch.ones_like(logits))
    chose = (clicks > 0) & (clicks < rows)
    if not chose.any():
        return logits.sum() * 0
    top = logits.new_full((n,), -torch.inf).scatter_reduce(0, index, logits.detach(), "amax")  # a stable logsumexp
    lse = top + logits.new_zeros(n).index_add_(0, index, torch.exp(logits - top[index])).log()
    per_click = (lse[index] - logits) * clicked  # -log softmax of each clicked row, zero elsewhere
    per_visit = logits.new_zeros(n).index_add_(0, index, per_click) / clicks.clamp(min=1)
    return per_visit[chose].mean()
