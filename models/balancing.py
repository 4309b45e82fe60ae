"""Task balancing and gradient surgery: how several task losses become one update.

- fixed:        sum of w_t * L_t with configured weights (default 1).
- uncertainty:  Kendall et al. 2018: sum of exp(-s_t) * L_t + s_t, with s_t = log sigma_t^2 learnt; a
                noisy task (watch fraction) gets down-weighted by the data rather than by hand.
- gradnorm:     Chen et al. 2018: weights learnt so that each task's gradient norm on a shared layer is
                proportional to how far behind its loss is (L_t / L_t(0))^alpha; weights sum to T.
- dwa:          Liu et al. 2019 (dynamic weight average): a task whose loss fell slowly over the last two
                epochs gets more weight; T * softmax(r_t / temperature), r_t = L_t(e-1) / L_t(e-2).
- pcgrad:       Yu et al. 2020, on top of any of the above: where two tasks' gradients conflict (negative dot
                product), each is projected onto the other's normal plane before they are summed.

A task missing from a step's losses (no clicked row in the batch, say) simply sits that step out.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import torch
import torch.nn as nn

BALANCERS = ("fixed", "uncertainty", "gradnorm", "dwa")


def tensor_sum(terms: Iterable[torch.Tensor]) -> torch.Tensor:
    """The sum of loss terms, a tensor even when there are none (Python's sum would give the int 0)."""
    return sum(terms, torch.zeros(()))


class Balancer(nn.Module):
    """Base: fixed weights. Subclasses change `weights` or `combine`."""

    def __init__(self, tasks: tuple[str, ...], weights: dict[str, float] | None = None):
        super().__init__()
        self.tasks = tuple(tasks)
        self.fixed = {t: float((weights or {}).get(t, 1.0)) for t in self.tasks}

    def weights(self) -> dict[str, float]:
        return dict(self.fixed)

    def weighted(self, losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each task's contribution to the total loss (what PCGrad takes gradients of)."""
        w = self.weights()
        return {t: w[t] * loss for t, loss in losses.items()}

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return tensor_sum(self.weighted(losses).values())

    def extra_loss(self, losses: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """A term that trains the balancer's own parameters (uncertainty's log variances)."""
        return None

    def update(self, losses: dict[str, torch.Tensor], shared: list[torch.Tensor]) -> None:
        """Called with the step's losses before the backward pass (GradNorm adjusts its weights here)."""

    def end_epoch(self, mean_losses: dict[str, float]) -> None:
        """Called with the epoch's mean unweighted losses (DWA updates its weights here)."""

    def state(self) -> torch.Tensor | None:
        """Weights set in `update` outside the optimizer (GradNorm's): data-parallel workers average them."""
        return None

    def set_state(self, state: torch.Tensor) -> None:
        """Take the weights `state` gave, averaged over the workers."""


class Uncertainty(Balancer):
    def __init__(self, tasks: tuple[str, ...], weights: dict[str, float] | None = None):
        super().__init__(tasks, weights)
        self.log_variance = nn.ParameterDict({t: nn.Parameter(torch.zeros(())) for t in self.tasks})

    def weights(self) -> dict[str, float]:
        return {t: self.fixed[t] * float(torch.exp(-self.log_variance[t].detach())) for t in self.tasks}

    def weighted(self, losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {t: self.fixed[t] * torch.exp(-self.log_variance[t]) * loss for t, loss in losses.items()}

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return tensor_sum(self.weighted(losses).values()) + self.extra_loss(losses)

    def extra_loss(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return tensor_sum(self.log_variance[t] for t in losses)


class DWA(Balancer):
    def __init__(self, tasks: tuple[str, ...], weights: dict[str, float] | None = None, temperature: float = 2.0):
        super().__init__(tasks, weights)
        self.temperature = temperature
        self.history: list[dict[str, float]] = []
        self.current = {t: 1.0 for t in self.tasks}

    def weights(self) -> dict[str, float]:
        return {t: self.fixed[t] * self.current[t] for t in self.tasks}

    def end_epoch(self, mean_losses: dict[str, float]) -> None:
        self.history.append(mean_losses)
        if len(self.history) >= 2:
            before, last = self.history[-2], self.history[-1]
            ratio = torch.tensor([last.get(t, 1.0) / max(before.get(t, 1.0), 1e-8) for t in self.tasks])
            weights = len(self.tasks) * torch.softmax(ratio / self.temperature, 0)
            self.current = dict(zip(self.tasks, weights.tolist()))


class GradNorm(Balancer):
    def __init__(
        self, tasks: tuple[str, ...], weights: dict[str, float] | None = None, alpha: float = 1.5, lr: float = 0.025
    ):
        super().__init__(tasks, weights)
        self.alpha, self.lr = alpha, lr
        self.log_weight = {t: torch.zeros(()) for t in self.tasks}
        self.initial: dict[str, float] = {}

    def weights(self) -> dict[str, float]:
        return {t: self.fixed[t] * float(torch.exp(self.log_weight[t])) for t in self.tasks}

    def update(self, losses: dict[str, torch.Tensor], shared: list[torch.Tensor]) -> None:
        tasks = [t for t in losses if losses[t].requires_grad]
        if len(tasks) < 2 or not shared:
            return
        for t in tasks:
            self.initial.setdefault(t, max(losses[t].item(), 1e-8))
        per_task = []
        for t in tasks:  # |d L_t / d W| on the shared layer, one autograd pass per task
            grads = torch.autograd.grad(losses[t], shared, retain_graph=True, allow_unused=True)
            per_task.append(torch.sqrt(tensor_sum((g**2).sum() for g in grads if g is not None)))
        norms = torch.stack(per_task).detach()
        w = torch.stack([torch.exp(self.log_weight[t]) for t in tasks])
        ratio = torch.tensor([losses[t].item() / self.initial[t] for t in tasks])
        target = (w * norms).mean() * (ratio / ratio.mean()) ** self.alpha
        # d/dw of sum |w_t G_t - target_t|, with the target held constant (as in the paper)
        grad_w = torch.sign(w * norms - target) * norms
        new_w = torch.clamp(w - self.lr * grad_w * w, min=1e-3)
        new_w = new_w * len(tasks) / new_w.sum()  # renormalise: the weights sum to the number of tasks
        for t, value in zip(tasks, new_w):
            self.log_weight[t] = torch.log(value)

    def state(self) -> torch.Tensor:
        return torch.stack([torch.exp(self.log_weight[t]) for t in self.tasks])

    def set_state(self, state: torch.Tensor) -> None:
        for t, value in zip(self.tasks, state):
            self.log_weight[t] = torch.log(value)


def make_balancer(name: str, tasks: tuple[str, ...], weights: dict[str, float] | None = None) -> Balancer:
    if name not in BALANCERS:
        raise ValueError(f"unknown balancing {name!r}; choose one of {', '.join(BALANCERS)}")
    return {"fixed": Balancer, "uncertainty": Uncertainty, "gradnorm": GradNorm, "dwa": DWA}[name](tasks, weights)


def pcgrad_backward(
    task_losses: dict[str, torch.Tensor], params: list[nn.Parameter], extra: torch.Tensor | None = None, seed: int = 0
) -> dict[str, float]:
    """Set params' .grad to the PCGrad-combined gradient of the task losses (plus `extra`'s plain gradient).
    Returns how often each task's gradient was projected (a conflict count, for diagnostics)."""
    tasks = list(task_losses)
    flat = []
    for t in tasks:
        grads = torch.autograd.grad(task_losses[t], params, retain_graph=True, allow_unused=True)
        flat.append(torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)]))
    projected = [g.clone() for g in flat]
    conflicts = {t: 0.0 for t in tasks}
    rng = random.Random(seed)
    for i, g in enumerate(projected):
        others = [j for j in range(len(tasks)) if j != i]
        rng.shuffle(others)
        for j in others:
            dot = torch.dot(g, flat[j])
            if dot < 0:
                g -= dot / (flat[j].norm() ** 2 + 1e-12) * flat[j]
                conflicts[tasks[i]] += 1
    total = torch.stack(projected).sum(0)
    if extra is not None:
        extra_grads = torch.autograd.grad(extra, params, retain_graph=True, allow_unused=True)
        total = total + torch.cat(
            [(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(extra_grads, params)]
        )
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = total[offset : offset + n].view_as(p).clone()
        offset += n
    return conflicts
