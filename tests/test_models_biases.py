"""Per-user and per-video biases that shrink toward content (models/multitask.py, `NetConfig.biases`): on a tiny
catalog of two kinds of content, a video's own quality is learnt from its impressions, a video with a handful
of impressions stays near what its content predicts, and a new video gets its content's prediction."""

from __future__ import annotations

import pytest
import torch

from models.data import CatalogTensors, Impressions
from models.multitask import MultiTaskNet, NetConfig
from models.trainer import TrainConfig, fit

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_torch_thread")]

V, CLIP_DIM = 41, 8  # videos 0-19 look alike (kind A), 20-39 too (kind B); 40 is new: kind B, never shown
STAR, LUCKY, NEW = 20, 21, 40  # STAR: kind B, clicked 90% of 600 times; LUCKY: kind B, clicked 3 times of 3
RATE = {"A": 0.5, "B": 0.1}
KINDS = {"A": range(0, 20), "B": range(22, 40)}  # the ordinary videos of each kind


def catalog() -> CatalogTensors:
    g = torch.Generator().manual_seed(0)
    kind = torch.tensor([0] * 20 + [1] * 21)
    centres = torch.randn(2, CLIP_DIM, generator=g) * 2
    clip = centres[kind] + 0.1 * torch.randn(V, CLIP_DIM, generator=g)
    return CatalogTensors(
        video_clip=clip,
        text_clip=clip.clone(),
        meta=torch.zeros(V, 1),
        bucket=torch.arange(V) + 1,  # one bucket each: no collisions
        category=kind,
    )


def impressions(seed: int, ordinary: int, star: int = 0, lucky: int = 0) -> Impressions:
    """`ordinary` impressions spread over videos 0-19 and 22-39 at their kind's rate, then `star` of the star
    and `lucky` of the lucky video."""
    g = torch.Generator().manual_seed(seed)
    video = torch.randint(0, 38, (ordinary,), generator=g)
    video = video + (video >= STAR) * 2  # not the star or the lucky one
    rate = torch.where(video < 20, RATE["A"], RATE["B"])
    video = torch.cat([video, torch.full((star,), STAR), torch.full((lucky,), LUCKY)])
    rate = torch.cat([rate, torch.full((star,), 0.9), torch.ones(lucky)])
    n = len(video)
    click = (torch.rand(n, generator=g) < rate).float()
    nan = torch.full((n,), float("nan"))
    user = torch.ones(n, dtype=torch.long)  # one user, at one hour: only the videos differ
    zeros = torch.zeros(n, dtype=torch.long)
    return Impressions(
        user=user,
        video=video,
        history=torch.full((n, 1), -1),
        hour=zeros,
        weekday=zeros,
        device=zeros,
        region=zeros,
        click=click,
        like=nan.clone(),
        watch=nan.clone(),
        group=user,
        visit=torch.arange(n),
    )


def trained_net() -> MultiTaskNet:
    config = NetConfig(
        clip_dim=CLIP_DIM,
        meta_dim=1,
        n_categories=2,
        n_devices=1,
        n_regions=1,
        user_buckets=16,
        video_buckets=64,
        arch="shared-bottom",
        tasks=("click",),
        d=8,
        expert_hidden=16,
        expert_dim=8,
        tower_hidden=8,
        dropout=0.0,
        biases=True,
    )
    torch.manual_seed(0)
    net = MultiTaskNet(config)
    labelled = torch.arange(40)
    config_train = TrainConfig(epochs=12, batch_size=256, lr=1e-2, patience=12, progress=False, class_weighting=False)
    fit(net, impressions(0, 4000, 600, 3), impressions(1, 1000, 600), catalog(), labelled, labelled, config_train)
    return net


def click_probability(net: MultiTaskNet, video: int) -> float:
    """Mean P(click) of the video over users and hours (nothing else varies in this world)."""
    data = impressions(2, 400)
    data.video[:] = video
    net.eval()
    with torch.no_grad():
        return float(net.probabilities({"click": net(data.batch())["click"]})["click"].mean())


def test_a_video_learns_its_own_quality_and_a_new_one_gets_its_contents_prediction():
    net = trained_net()
    kind = {k: sum(click_probability(net, v) for v in videos) / len(videos) for k, videos in KINDS.items()}
    star, lucky, new = (click_probability(net, v) for v in (STAR, LUCKY, NEW))
    assert abs(kind["A"] - RATE["A"]) < 0.08 and abs(kind["B"] - RATE["B"]) < 0.08  # what content predicts
    assert star > 0.75  # 600 impressions at 0.9: its own quality, far above its kind's
    assert kind["B"] < lucky < kind["B"] + 0.5 * (1 - kind["B"])  # 3 clicks of 3: moved, less than half way
    assert new < kind["B"] + 0.25 * (star - kind["B"])  # never shown: near its kind, not pulled to the star
    video_bias = net.video_bias.weight[:, 0].detach()
    assert video_bias[NEW + 1] == 0 and video_bias[0] == 0  # nothing learnt for a new or the unknown video
    assert 0 < video_bias[LUCKY + 1] < 0.4 * video_bias[STAR + 1]  # held back by its prior, on less evidence
