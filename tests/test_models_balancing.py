"""Task balancing (models/balancing.py) on toy losses: what each method does to the task weights, and what
PCGrad does to conflicting gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from models.balancing import BALANCERS, DWA, Balancer, GradNorm, Uncertainty, make_balancer, pcgrad_backward

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_torch_thread")]


TASKS = ("a", "b")


def constant_losses(**values: float) -> dict[str, torch.Tensor]:
    return {t: torch.tensor(v, requires_grad=True) for t, v in values.items()}


# ---- make_balancer and the common contract ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, cls", [("fixed", Balancer), ("uncertainty", Uncertainty), ("gradnorm", GradNorm), ("dwa", DWA)]
)
def test_make_balancer_builds_each_method(name, cls):
    assert type(make_balancer(name, TASKS)) is cls
    assert set(BALANCERS) == {"fixed", "uncertainty", "gradnorm", "dwa"}


def test_make_balancer_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="unknown balancing 'nope'"):
        make_balancer("nope", TASKS)


@pytest.mark.parametrize("name", BALANCERS)
def test_every_method_starts_as_the_configured_weighted_sum(name):
    balancer = make_balancer(name, TASKS, {"a": 3.0})
    losses = constant_losses(a=0.5, b=2.0)
    assert balancer.weights() == {"a": pytest.approx(3.0), "b": pytest.approx(1.0)}
    assert balancer.combine(losses).item() == pytest.approx(3.0 * 0.5 + 2.0)


@pytest.mark.parametrize("name", BALANCERS)
def test_a_task_missing_from_the_step_sits_it_out(name):
    balancer = make_balancer(name, TASKS, {"a": 3.0, "b": 5.0})
    assert set(balancer.weighted(constant_losses(a=0.5))) == {"a"}
    assert balancer.combine(constant_losses(a=0.5)).item() == pytest.approx(1.5)


# ---- fixed -------------------------------------------------------------------------------------------------


def test_fixed_weights_never_change():
    balancer = make_balancer("fixed", TASKS, {"a": 0.25})
    shared = nn.Parameter(torch.ones(3))
    for step in range(3):
        losses = {"a": shared.sum() * (step + 1), "b": (shared**2).sum() / (step + 1)}
        balancer.update(losses, [shared])
        balancer.end_epoch({t: v.item() for t, v in losses.items()})
    assert balancer.weights() == {"a": 0.25, "b": 1.0}
    assert balancer.extra_loss(losses) is None and not list(balancer.parameters())
    assert balancer.combine(losses).item() == pytest.approx(0.25 * 9 + 1)  # the last step: a = 9, b = 1


# ---- uncertainty -------------------------------------------------------------------------------------------


def test_uncertainty_down_weights_the_noisy_task():
    """Two regressions of one target through a shared model, one with 20 times the label noise: the learnt
    log variances settle near log(loss), so the noisy task's weight ends far below the clean one's."""
    torch.manual_seed(0)
    x = torch.randn(256, 4)
    signal = x @ torch.randn(4)
    targets = {"clean": signal + 0.05 * torch.randn(256), "noisy": signal + 1.0 * torch.randn(256)}
    model = nn.Linear(4, 1)
    balancer = make_balancer("uncertainty", ("clean", "noisy"))
    optimizer = torch.optim.Adam([*model.parameters(), *balancer.parameters()], lr=0.05)
    for _ in range(300):
        prediction = model(x).squeeze(-1)
        losses = {t: F.mse_loss(prediction, y) for t, y in targets.items()}
        optimizer.zero_grad()
        balancer.combine(losses).backward()
        optimizer.step()
    weights = balancer.weights()
    assert weights["noisy"] < weights["clean"] / 20
    for task, loss in losses.items():  # the optimum of exp(-s) * L + s is exp(-s) = 1 / L
        assert weights[task] == pytest.approx(1 / loss.item(), rel=0.2)


def test_uncertainty_adds_the_log_variances_as_regulariser():
    balancer = make_balancer("uncertainty", TASKS)
    with torch.no_grad():
        balancer.log_variance["a"].fill_(math.log(2.0))
    losses = constant_losses(a=4.0, b=1.0)
    assert balancer.weights()["a"] == pytest.approx(0.5)
    assert balancer.extra_loss(losses).item() == pytest.approx(math.log(2.0))
    assert balancer.combine(losses).item() == pytest.approx(4.0 / 2 + 1.0 + math.log(2.0))


# ---- DWA ---------------------------------------------------------------------------------------------------


def test_dwa_raises_the_weight_of_the_task_whose_loss_falls_slower():
    balancer = make_balancer("dwa", ("fast", "slow"))
    balancer.end_epoch({"fast": 1.0, "slow": 1.0})
    assert balancer.weights() == {"fast": 1.0, "slow": 1.0}  # one epoch: no rate of descent yet
    balancer.end_epoch({"fast": 0.5, "slow": 0.9})
    weights = balancer.weights()
    assert weights["slow"] > weights["fast"]
    assert sum(weights.values()) == pytest.approx(2.0)  # T * softmax
    expected = math.exp(0.9 / 2) / (math.exp(0.9 / 2) + math.exp(0.5 / 2))  # temperature 2
    assert weights["slow"] == pytest.approx(2 * expected)


def test_dwa_follows_the_last_two_epochs_only():
    balancer = make_balancer("dwa", ("fast", "slow"))
    for losses in ({"fast": 1.0, "slow": 1.0}, {"fast": 0.5, "slow": 0.9}, {"fast": 0.5, "slow": 0.45}):
        balancer.end_epoch(losses)
    weights = balancer.weights()  # now "fast" stalled (ratio 1) while "slow" halved
    assert weights["fast"] > weights["slow"]


# ---- GradNorm ----------------------------------------------------------------------------------------------


def gradnorm_steps(balancer: Balancer, losses_of, steps: int) -> None:
    shared = nn.Parameter(torch.ones(3))
    for _ in range(steps):
        balancer.update(losses_of(shared), [shared])


def test_gradnorm_moves_weights_toward_equal_gradient_norms():
    """Equal training rates, gradient norms 4 : 1 on the shared layer: the weighted norms w_t |g_t| converge."""
    balancer = make_balancer("gradnorm", TASKS)
    scale = {"a": 2.0, "b": 0.5}

    def losses(shared):
        return {t: s * shared.sum() for t, s in scale.items()}  # |d L / d shared| = s * sqrt(3)

    def imbalance() -> float:
        w = balancer.weights()
        return (w["a"] * scale["a"]) / (w["b"] * scale["b"])

    assert imbalance() == pytest.approx(4.0)
    gradnorm_steps(balancer, losses, 200)
    weights = balancer.weights()
    assert weights["a"] < 1 < weights["b"]
    assert 0.7 < imbalance() < 1.4
    assert sum(weights.values()) == pytest.approx(2.0)


def test_gradnorm_favours_the_task_whose_loss_has_fallen_least():
    balancer = make_balancer("gradnorm", TASKS)
    gradnorm_steps(balancer, lambda shared: {"a": shared.sum(), "b": shared.sum()}, 1)  # initial losses 3 and 3
    # equal gradients, but "a" is down to a quarter of its initial loss and "b" has not moved
    gradnorm_steps(balancer, lambda shared: {"a": shared.sum() - 2.25, "b": shared.sum()}, 20)
    weights = balancer.weights()
    assert weights["b"] > 1.2 > 0.8 > weights["a"]


def test_gradnorm_needs_two_tasks_and_a_shared_layer():
    balancer = make_balancer("gradnorm", TASKS)
    shared = nn.Parameter(torch.ones(3))
    balancer.update({"a": 2 * shared.sum()}, [shared])
    balancer.update({"a": 2 * shared.sum(), "b": shared.sum()}, [])
    assert balancer.weights() == {"a": 1.0, "b": 1.0}


# ---- PCGrad ------------------------------------------------------------------------------------------------


def linear_losses(theta: torch.Tensor, **gradients: list[float]) -> dict[str, torch.Tensor]:
    """Losses theta . g_t, whose gradients are the given g_t."""
    return {t: theta @ torch.tensor(g) for t, g in gradients.items()}


def test_pcgrad_removes_the_conflicting_components():
    theta = nn.Parameter(torch.zeros(2))
    g_a, g_b = torch.tensor([1.0, 0.0]), torch.tensor([-2.0, 1.0])  # dot -2: they conflict
    assert torch.dot(g_a + g_b, g_a) < 0  # a plain sum would undo task a's progress
    conflicts = pcgrad_backward(linear_losses(theta, a=[1.0, 0.0], b=[-2.0, 1.0]), [theta])
    # a projected on b's normal plane: [1, 0] + 0.4 [-2, 1]; b on a's: [-2, 1] + 2 [1, 0]
    assert torch.allclose(theta.grad, torch.tensor([0.2, 0.4]) + torch.tensor([0.0, 1.0]))
    assert torch.dot(theta.grad, g_a) >= 0 and torch.dot(theta.grad, g_b) >= 0
    assert conflicts == {"a": 1.0, "b": 1.0}


def test_pcgrad_leaves_agreeing_gradients_alone():
    theta = nn.Parameter(torch.zeros(2))
    conflicts = pcgrad_backward(linear_losses(theta, a=[1.0, 0.0], b=[1.0, 1.0]), [theta])
    assert torch.allclose(theta.grad, torch.tensor([2.0, 1.0]))
    assert conflicts == {"a": 0.0, "b": 0.0}


def test_pcgrad_adds_the_extra_term_unprojected():
    theta = nn.Parameter(torch.zeros(2))
    extra = theta @ torch.tensor([0.0, -5.0])  # conflicts with both tasks, yet is added as it is
    pcgrad_backward(linear_losses(theta, a=[1.0, 0.0], b=[-2.0, 1.0]), [theta], extra=extra)
    assert torch.allclose(theta.grad, torch.tensor([0.2, 1.4 - 5.0]))


def test_pcgrad_equals_plain_backward_without_conflict_over_several_parameters():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    unused = nn.Parameter(torch.ones(2, 2))  # in no loss: its gradient is zero, not missing
    params = [*net.parameters(), unused]
    x = torch.randn(8, 3)
    base = net(x).pow(2).mean()
    pcgrad_backward({"a": base, "b": 3 * base}, params)  # same direction: nothing to project
    surgery = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    (4 * net(x).pow(2).mean()).backward()
    for p, g in zip(params[:-1], surgery[:-1]):
        assert g.shape == p.shape and torch.allclose(g, p.grad, atol=1e-6)
    assert torch.equal(surgery[-1], torch.zeros(2, 2))
