"""The multi-task network (models/multitask.py) on a tiny random catalog: one contract over every architecture
(forward shapes, probabilities, gradient flow through models/trainer.py's task losses), the feature-group
gates and switches, and the context features it reads (models/context.py)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from models.context import HOUR_SLOTS, HOURS, Context, daypart, hour_slot
from models.data import CatalogTensors
from models.multitask import ARCHS, GROUPS, TASKS, TOWER_TASKS, CrossNet, MultiTaskNet, NetConfig, in_chunks
from models.trainer import task_losses

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_torch_thread")]


V, CLIP_DIM, META_DIM, B = 12, 16, 2, 16  # videos, CLIP width, metadata width, batch rows
N_CATEGORIES, N_DEVICES = 3, 4

# Every architecture with all tasks, and the single-task baseline's networks (one shared bottom per task).
CONFIGS = (
    {arch: {"arch": arch} for arch in ARCHS}
    | {f"{arch}-cross": {"arch": arch, "cross_layers": 2, "cross_rank": 4} for arch in ARCHS}
    | {f"{arch}-no-biases": {"arch": arch, "biases": False} for arch in ARCHS}
    | {f"{arch}-context-terms": {"arch": arch, "context_terms": True} for arch in ARCHS}
    | {f"single-task-{task}": {"arch": "shared-bottom", "tasks": (task,)} for task in TASKS}
)


def tiny_config(**overrides) -> NetConfig:
    base = dict(
        clip_dim=CLIP_DIM,
        meta_dim=META_DIM,
        n_categories=N_CATEGORIES,
        n_devices=N_DEVICES,
        n_regions=3,
        user_buckets=6,
        video_buckets=8,
        d=8,
        n_experts=2,
        expert_hidden=16,
        expert_dim=8,
        tower_hidden=8,
        retrieval_dim=8,
        dropout=0.0,
        id_dropout=0.0,
    )
    return NetConfig(**(base | overrides))


def tiny_catalog(seed: int = 0) -> CatalogTensors:
    g = torch.Generator().manual_seed(seed)
    category = torch.arange(V) % N_CATEGORIES
    category[::5] = -1  # unlabelled videos
    return CatalogTensors(
        video_clip=torch.randn(V, CLIP_DIM, generator=g),
        text_clip=torch.randn(V, CLIP_DIM, generator=g),
        meta=torch.randn(V, META_DIM, generator=g),
        bucket=torch.arange(V) % 7 + 1,
        category=category,
    )


def tiny_net(**overrides) -> MultiTaskNet:
    torch.manual_seed(0)
    net = MultiTaskNet(tiny_config(**overrides))
    net.set_catalog(tiny_catalog())
    net.user_seen[1:] = True  # every bucket but the "unknown" 0 was seen in training
    net.video_seen[1:] = True
    return net


def tiny_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """B impressions, every other one clicked; like and watch known on clicked rows only; devices 0-3."""
    g = torch.Generator().manual_seed(seed)
    click = (torch.arange(B) % 2 == 0).float()
    nan = torch.full((B,), float("nan"))
    user = torch.randint(1, 6, (B,), generator=g)
    return {
        "user": user,
        "video": torch.randint(0, V, (B,), generator=g),
        "history": torch.randint(-1, V, (B, 5), generator=g),
        "hour": torch.randint(0, HOURS, (B,), generator=g),
        "weekday": torch.randint(0, 7, (B,), generator=g),
        "device": torch.arange(B) // 2 % N_DEVICES,
        "region": torch.randint(0, 3, (B,), generator=g),
        "click": click,
        "like": torch.where(click > 0, (torch.arange(B) % 4 == 0).float(), nan),
        "watch": torch.where(click > 0, torch.rand(B, generator=g), nan),
        "group": user,
    }


def labelled_videos() -> torch.Tensor:
    return torch.nonzero(tiny_catalog().category >= 0).squeeze(1)


def idle_parameters(config: NetConfig) -> tuple[str, ...]:
    """Prefixes of the parameters that none of the configured tasks reads, so that no gradient reaches them:
    only the interest tasks and retrieval see a row's context, the category task sees the video's content
    alone, retrieval skips the history attention and the gated interaction."""
    tasks = set(config.tasks)
    idle: set[str] = set()
    if not tasks & {"click", "like", "watch", "context"}:
        idle |= {"query.", "key."}
    if not tasks & {"click", "like", "watch", "retrieval"}:
        idle |= {"hour.", "weekday.", "device.", "region."}
    if tasks == {"category"}:
        idle |= {"video_id.", "meta.", "user_id."}
    if not tasks & set(TOWER_TASKS):
        idle |= {"gate_logits", "bottom."}
    return tuple(idle)


def outputs(net: MultiTaskNet, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Everything the network answers for a batch and the catalog, in eval mode."""
    net.eval()
    with torch.no_grad():
        out = dict(net(batch)) if net.config.tower_tasks else {}
        if "category" in net.config.tasks:
            out["category_of_content"] = net.category_logits(torch.arange(V))
        if "retrieval" in net.config.tasks:
            out["user_vectors"] = net.user_vectors(batch)
            out["video_vectors"] = net.video_vectors(torch.arange(V))
    return out


# ---- the contract, over every architecture ----------------------------------------------------------------


@pytest.mark.parametrize("overrides", CONFIGS.values(), ids=CONFIGS.keys())
def test_forward_gives_each_task_head_its_shape_and_valid_probabilities(overrides):
    net = tiny_net(**overrides)
    batch = tiny_batch()
    net.eval()
    with torch.no_grad():
        logits = net(batch)
        probabilities = net.probabilities(logits)
    tasks = net.config.tower_tasks
    assert set(logits) == set(tasks)
    expected = {
        "click": (B,),
        "like": (B,),
        "watch": (B,),
        "category": (B, N_CATEGORIES),
        "context": (B, HOUR_SLOTS + N_DEVICES),
    }
    assert {t: tuple(v.shape) for t, v in logits.items()} == {t: expected[t] for t in tasks}
    for task, p in probabilities.items():
        assert torch.isfinite(p).all() and (p >= 0).all() and (p <= 1).all(), task
        if p.ndim == 2:  # softmax heads: category, hour slot, device
            assert torch.allclose(p.sum(1), torch.ones(B), atol=1e-5), task
    if "context" in tasks:
        assert probabilities["hour_slot"].shape == (B, HOUR_SLOTS) and probabilities["device"].shape == (B, N_DEVICES)


@pytest.mark.parametrize("overrides", CONFIGS.values(), ids=CONFIGS.keys())
def test_every_task_loss_reaches_every_parameter_it_reads(overrides):
    net = tiny_net(**overrides)
    net.train()
    losses = task_losses(net, tiny_batch(), labelled_videos())
    assert set(losses) == set(net.config.tasks)  # the tiny batch has rows in every task's sample space
    assert all(torch.isfinite(loss) for loss in losses.values())
    sum(losses.values()).backward()
    idle = idle_parameters(net.config)
    for name, parameter in net.named_parameters():
        grad = parameter.grad
        if name.startswith(idle):
            assert grad is None or not grad.any(), f"{name} should be out of reach of {net.config.tasks}"
        else:
            assert grad is not None, f"no gradient reaches {name}"
            assert torch.isfinite(grad).all() and grad.abs().sum() > 0, f"{name}: zero or non-finite gradient"


@pytest.mark.parametrize("overrides", CONFIGS.values(), ids=CONFIGS.keys())
def test_retrieval_towers_give_unit_vectors_and_in_batch_scores(overrides):
    net = tiny_net(**overrides)
    if "retrieval" not in net.config.tasks:
        assert not hasattr(net, "user_tower")
        return
    batch = tiny_batch()
    out = outputs(net, batch)
    assert out["user_vectors"].shape == (B, 8) and out["video_vectors"].shape == (V, 8)
    assert torch.allclose(out["user_vectors"].norm(dim=1), torch.ones(B), atol=1e-5)
    assert torch.allclose(out["video_vectors"].norm(dim=1), torch.ones(V), atol=1e-5)
    with torch.no_grad():
        assert net.retrieval_logits(batch).shape == (B, B)


def test_category_logits_come_from_the_content_alone():
    net = tiny_net()
    before = outputs(net, tiny_batch(0))["category_of_content"]
    after = outputs(net, tiny_batch(1))["category_of_content"]  # other users, histories, contexts
    assert before.shape == (V, N_CATEGORIES) and torch.equal(before, after)


def test_whole_catalog_passes_in_chunks_equal_one_pass(monkeypatch):
    """Caching, category probabilities (shuffled across the whole catalog or not) and video vectors, chunk by
    chunk, give what one pass over the catalog gives."""
    net = tiny_net()
    net.eval()
    order = torch.randperm(V, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        net.cache_videos()
        whole = {
            "cache": dict(net.video_cache or {}),
            "category": net.category_probabilities(),
            "shuffled": net.category_probabilities({"video_clip": order}),
            "vectors": net.video_vectors(torch.arange(V)),
        }
        monkeypatch.setattr("models.multitask.CATALOG_CHUNK", 5)  # chunks of 5, 5 and 2
        net.cache_videos()
        chunked = {
            "cache": dict(net.video_cache or {}),
            "category": net.category_probabilities(),
            "shuffled": net.category_probabilities({"video_clip": order}),
            "vectors": in_chunks(net.video_vectors, V),
        }
    for key in ("category", "shuffled", "vectors"):
        assert torch.allclose(whole[key], chunked[key], atol=1e-6), key
    assert not torch.allclose(whole["category"], whole["shuffled"])
    assert all(torch.allclose(whole["cache"][k], chunked["cache"][k], atol=1e-6) for k in whole["cache"])


def test_like_and_watch_losses_ignore_unclicked_and_unknown_rows():
    net = tiny_net()
    batch = tiny_batch()
    changed = dict(batch, like=batch["like"].nan_to_num(1.0), watch=batch["watch"].nan_to_num(0.0))
    net.eval()
    before, after = task_losses(net, batch, None), task_losses(net, changed, None)
    assert after["like"] == before["like"] and after["watch"] == before["watch"]
    assert after["click"] == before["click"]


def test_net_config_rejects_what_the_network_cannot_build():
    with pytest.raises(ValueError, match="unknown architecture"):
        tiny_config(arch="moe")
    with pytest.raises(ValueError, match="unknown tasks or feature groups"):
        tiny_config(tasks=("click", "dwell"))
    with pytest.raises(ValueError, match="CLIP embeddings"):
        tiny_config(groups=("history", "user_id", "video_id"))


# ---- DCN-v2 cross layers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [0, 3])
def test_cross_layers_compute_x0_times_a_linear_map_of_the_last_layer_plus_the_residual(rank):
    torch.manual_seed(0)
    cross = CrossNet(width=6, layers=2, rank=rank)
    x0 = torch.randn(5, 6)
    x = x0
    for i in range(2):
        if rank:
            W, b = cross.up[i].weight @ cross.down[i].weight, cross.up[i].bias  # U V: [6, 3] [3, 6]
            assert cross.down[i].weight.shape == (rank, 6)
        else:
            W, b = cross.down[i].weight, cross.down[i].bias
        x = x0 * (x @ W.T + b) + x
    assert torch.allclose(cross(x0), x, atol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_no_cross_layers_is_the_network_of_before(arch):
    """cross_layers=0 (the default) builds exactly the earlier network: the same state-dict keys, and the same
    initial weights and outputs for the same seed; a saved config without the field loads with none."""
    plain, crossed = tiny_net(arch=arch), tiny_net(arch=arch, cross_layers=1)
    assert plain.cross is None and not any(k.startswith("cross.") for k in plain.state_dict())
    assert {k for k in crossed.state_dict() if not k.startswith("cross.")} == set(plain.state_dict())
    # the cross layers are made last: every other weight is drawn as before
    assert all(torch.equal(v, crossed.state_dict()[k]) for k, v in plain.state_dict().items())
    saved = plain.config.to_dict()
    del saved["cross_layers"], saved["cross_rank"]  # a config saved before the field existed
    again = MultiTaskNet(NetConfig(**saved))
    again.load_state_dict(plain.state_dict())
    again.set_catalog(tiny_catalog())
    assert again.config.cross_layers == 0
    for task, value in outputs(plain, tiny_batch()).items():
        assert torch.equal(value, outputs(again, tiny_batch())[task]), task
    with pytest.raises(ValueError, match="negative"):
        tiny_config(cross_layers=-1)


@pytest.mark.parametrize("arch", ARCHS)
def test_a_config_saved_before_biases_builds_the_network_of_before(arch):
    """A model saved before biases existed has no bias weights: its config loads as a network without them
    (same keys, same outputs), while a new config has them, on every interest task's logits."""
    plain, biased = tiny_net(arch=arch, biases=False), tiny_net(arch=arch)
    assert {k for k in biased.state_dict() if not k.startswith(("user_bias.", "video_bias."))} == set(
        plain.state_dict()
    )
    saved = plain.config.to_dict()
    del saved["biases"], saved["bias_scale"], saved["id_scale"]
    again = MultiTaskNet(NetConfig.saved(saved))
    again.load_state_dict(plain.state_dict())  # strict: no missing bias weights
    again.set_catalog(tiny_catalog())
    for task, value in outputs(plain, tiny_batch()).items():
        assert torch.equal(value, outputs(again, tiny_batch())[task]), task
    with torch.no_grad():
        biased.video_bias.weight[tiny_catalog().bucket[3]] = torch.tensor([1.0, 2.0, 3.0])
    batch = tiny_batch()
    batch["video"][:] = 3
    before, after = outputs(plain, batch), outputs(biased, batch)
    for i, task in enumerate(("click", "like", "watch")):  # each bias adds to its own task's logit, and only that
        assert torch.allclose(after[task] - before[task], torch.full((B,), i + 1.0), atol=1e-5), task
    for task in ("category", "context", "category_of_content", "user_vectors", "video_vectors"):
        assert torch.equal(before[task], after[task]), task
    assert biased.prior_penalty(100) > 0 and plain.prior_penalty(100) == 0


def test_permuting_an_id_group_moves_its_bias_with_it():
    """Permutation importance of video_id counts the video's bias too: shuffled rows take the bias of the video
    whose vectors they took."""
    biased = tiny_net()
    with torch.no_grad():
        biased.video_bias.weight[tiny_catalog().bucket[3]] = 5.0
    unbiased = copy.deepcopy(biased)
    with torch.no_grad():
        unbiased.video_bias.weight.zero_()
    batch = tiny_batch()
    batch["video"] = torch.where(torch.arange(B) < 4, 3, 4)
    order = torch.roll(torch.arange(B), 2)
    biased.eval(), unbiased.eval()
    with torch.no_grad():
        moved = (
            biased(batch, permute={"video_id": order})["click"] - unbiased(batch, permute={"video_id": order})["click"]
        )
    assert torch.allclose(moved, torch.where(batch["video"][order] == 3, 5.0, 0.0), atol=1e-5)


def test_set_catalog_refuses_embeddings_of_another_width():
    net = MultiTaskNet(tiny_config(clip_dim=CLIP_DIM + 1))
    with pytest.raises(ValueError, match="dimensions"):
        net.set_catalog(tiny_catalog())


# ---- feature-group gates and switches ---------------------------------------------------------------------


def test_gate_penalty_is_positive_and_grows_with_the_gates():
    net = tiny_net()
    penalty = net.feature_gates().sum()  # the L1 norm of the gates (trainer: gate_l1 times this)
    assert 0 < penalty < len(GROUPS) and (net.feature_gates() > 0).all()
    with torch.no_grad():
        net.gate_logits[GROUPS.index("meta")] += 1.0
    assert net.feature_gates().sum() > penalty
    with torch.no_grad():
        net.gate_logits -= 3.0
    assert net.feature_gates().sum() < penalty


def test_gradient_descent_on_the_gate_penalty_alone_closes_the_gates():
    net = tiny_net()
    start = net.feature_gates().detach().clone()
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    for _ in range(50):
        optimizer.zero_grad()
        net.feature_gates().sum().backward()
        optimizer.step()
    gates = net.feature_gates().detach()
    assert (gates < start).all() and gates.max() < 0.5 * start.min()
    assert all(p.grad is None for name, p in net.named_parameters() if name != "gate_logits")


def perturb(group: str, net: MultiTaskNet, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Change the inputs that feed one feature group (the catalog in place in `net`); returns the batch."""
    g = torch.Generator().manual_seed(99)
    catalog = tiny_catalog()
    if group in ("video_clip", "text_clip", "meta"):
        setattr(catalog, group, torch.randn(getattr(catalog, group).shape, generator=g))
    elif group == "video_id":
        catalog.bucket = catalog.bucket % 7 + 1  # every video moves to another seen bucket
    net.set_catalog(catalog)
    if group == "history":
        return dict(batch, history=torch.randint(0, V, batch["history"].shape, generator=g))
    if group == "user_id":
        return dict(batch, user=batch["user"] % 5 + 1)
    if group == "context":
        return dict(
            batch,
            hour=(batch["hour"] + 7) % HOURS,
            weekday=(batch["weekday"] + 3) % 7,
            device=(batch["device"] + 1) % N_DEVICES,
            region=(batch["region"] + 1) % 3,
        )
    return batch


def changed_outputs(net: MultiTaskNet, group: str) -> set[str]:
    batch = tiny_batch()
    before = outputs(net, batch)
    after = outputs(net, perturb(group, net, batch))
    return {k for k in before if not torch.allclose(before[k], after[k], atol=1e-6)}


@pytest.mark.parametrize("group", GROUPS)
def test_a_group_switched_off_does_not_influence_any_output(group):
    assert changed_outputs(tiny_net(), group), f"{group} should matter while it is on"
    assert changed_outputs(tiny_net(groups=tuple(g for g in GROUPS if g != group)), group) == set()


@pytest.mark.parametrize("group", ["user_id", "history", "context"])  # (the video groups also feed the history)
def test_a_closed_gate_removes_its_group_from_the_task_heads(group):
    net = tiny_net()
    with torch.no_grad():
        net.gate_logits[GROUPS.index(group)] = -40.0  # sigmoid(-40) ~ 4e-18
    heads = set(net.config.tower_tasks) | {"category_of_content"}
    assert changed_outputs(net, group) & heads == set()


# ---- context features (models/context.py) -----------------------------------------------------------------


def test_hour_slot_maps_the_day_onto_eight_three_hour_slots():
    slots = [hour_slot(h) for h in range(HOURS)]
    assert slots == [h // 3 for h in range(HOURS)] and slots[0] == 0 and slots[-1] == HOUR_SLOTS - 1 == 7
    assert all(isinstance(s, int) for s in slots)
    assert [slots.count(s) for s in range(HOUR_SLOTS)] == [3] * HOUR_SLOTS


def test_hour_slot_of_arrays_and_tensors_matches_the_int_version():
    expected = [hour_slot(h) for h in range(HOURS)]
    array = hour_slot(np.arange(HOURS))
    tensor = hour_slot(torch.arange(HOURS))
    assert isinstance(array, np.ndarray) and array.tolist() == expected
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.long and tensor.tolist() == expected


def test_daypart_covers_every_hour_in_four_parts_of_six():
    parts = [daypart(h) for h in range(HOURS)]
    assert parts[0] == parts[5] == "at night" and parts[6] == parts[11] == "in the morning"
    assert parts[12] == parts[17] == "in the afternoon" and parts[18] == parts[23] == "in the evening"
    assert sorted(parts.count(p) for p in set(parts)) == [6, 6, 6, 6]
    with pytest.raises(ValueError, match="0-23"):
        daypart(24)  # a clear error, not a StopIteration from deep inside popularity


@pytest.mark.parametrize("hour, weekday", [(24, 0), (-1, 0), (12.0, 0), (0, 7), (0, -1), (0, "Mon")])
def test_context_rejects_an_hour_or_weekday_out_of_range(hour, weekday):
    with pytest.raises(ValueError, match="hour" if (hour, weekday)[0] != 0 else "weekday"):
        Context(hour=hour, weekday=weekday)


def test_context_accepts_the_bounds():
    assert Context(hour=0, weekday=0).hour == 0
    assert Context(hour=23, weekday=6, device="phone").weekday == 6
