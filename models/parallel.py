"""One worker's part in data-parallel training: what `trainer.fit` needs to train this worker's shard of the
examples in step with the other workers (DDP's algorithm, by hand, over `torch.distributed`, which the caller
has set up: Ray Train does, ingest/learning/distributed.py).

The loss is a sum over several network methods rather than one forward pass, so torch's
DistributedDataParallel would have to be threaded through each of them; averaging the gradients after the
backward pass is the same algorithm without touching the network. What must be equal on every worker
(which ids training saw, the class weights, the steps per epoch) comes from the whole training set, worked out
once by the driver, never from a worker's own shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .balancing import Balancer
from .multitask import MultiTaskNet
from .trainer import ClassWeights


@dataclass
class DataParallel:
    rank: int
    world: int
    batch_size: int  # per worker: the local engine's batch / workers, so that the global batch is the same
    steps: int  # per epoch, the same on every worker (a worker missing from a collective would hang the others)
    user_seen: torch.Tensor  # of the whole training set
    video_seen: torch.Tensor
    class_weights: ClassWeights
    device: str = "cpu"  # where the collectives run: "cuda" for NCCL (the training loop itself runs on the CPU)

    def mark_seen(self, net: MultiTaskNet) -> None:
        net.user_seen.copy_(self.user_seen)
        net.video_seen.copy_(self.video_seen)

    def start(self, params: Sequence[torch.Tensor]) -> None:
        """Every worker starts from rank 0's weights (the same seed gives them anyway; this makes it certain)."""
        with torch.no_grad():
            flat = self._reduce(torch.cat([p.detach().flatten() for p in params]), broadcast=True)
            for p, value in zip(params, _pieces(flat, params)):
                p.copy_(value)

    def gradients(self, params: Sequence[torch.Tensor]) -> None:
        """Average every parameter's gradient over the workers (a missing one counts as zeros); a parameter no
        worker has a gradient for keeps none, so that AdamW skips it as it does in local training."""
        have = torch.tensor([float(p.grad is not None) for p in params])
        grads = [p.grad.flatten() if p.grad is not None else torch.zeros(p.numel()) for p in params]
        flat = self._reduce(torch.cat([have] + grads))
        have, flat = flat[: len(params)], flat[len(params) :] / self.world
        for p, had, value in zip(params, have.tolist(), _pieces(flat, params)):
            p.grad = value.clone() if had > 0 else None

    def balancer(self, balancer: Balancer) -> None:
        """Task weights a balancer sets outside the optimizer (GradNorm's, from this worker's gradient norms):
        their mean over the workers, so that every worker weighs the tasks alike."""
        state = balancer.state()
        if state is not None:
            balancer.set_state(self._reduce(state) / self.world)

    def epoch_losses(
        self, sums: dict[str, float], counts: dict[str, int], tasks: tuple[str, ...]
    ) -> tuple[dict[str, float], dict[str, int]]:
        """The epoch's loss sums and counts over every worker (the curves, and DWA's weights, need the same)."""
        local = torch.tensor([sums.get(t, 0.0) for t in tasks] + [float(counts.get(t, 0)) for t in tasks])
        total = self._reduce(local.double()).tolist()
        n = len(tasks)
        return (
            {t: total[i] for i, t in enumerate(tasks) if total[n + i] > 0},
            {t: int(total[n + i]) for i, t in enumerate(tasks) if total[n + i] > 0},
        )

    def total(self, value: float) -> float:
        """The sum of a number over the workers."""
        return float(self._reduce(torch.tensor([value], dtype=torch.float64))[0])

    def decide(self, score: float) -> float:
        """Rank 0's validation score on every worker: early stopping and the best epoch agree by construction."""
        return float(self._reduce(torch.tensor([score], dtype=torch.float64), broadcast=True)[0])

    def _reduce(self, tensor: torch.Tensor, broadcast: bool = False) -> torch.Tensor:
        """The sum over the workers (or rank 0's value), on the collectives' device and back."""
        moved = tensor.to(self.device)
        if broadcast:
            dist.broadcast(moved, src=0)
        else:
            dist.all_reduce(moved)
        return moved.cpu()


def _pieces(flat: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """A flat tensor cut back into the parameters' shapes."""
    sizes = [p.numel() for p in params]
    return [piece.view_as(p) for piece, p in zip(torch.split(flat, sizes), params)]
