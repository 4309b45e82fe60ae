"""LightGCN (He et al. 2020) on the user-video click graph: "people who watch what you watch also watch".

One embedding per user and per video (layer 0), propagated over the symmetric-normalised bipartite adjacency
D^-1/2 A D^-1/2 with no feature transform and no nonlinearity; a node's final embedding is the mean of its
layer outputs, and a user-video score is their dot product. Learnt with BPR: each click against videos drawn
at random, plus L2 on the layer-0 embeddings of the step's users and videos.

Every step is full-batch (every click edge, one propagation of the whole graph): a step costs the number of
clicks times the dimension, the number of steps is fixed, so training is linear in the clicks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GraphConfig:
    """Chosen on the demo world's validation days (recall@50 and @100 of new clicks): past 200 steps it
    overfits, 3 layers or 4 negatives per click did no better than 2 and 1, stronger L2 (3e-2) did worse."""

    dim: int = 32
    layers: int = 2  # propagation layers
    epochs: int = 200  # full-batch steps: every click edge once per step
    lr: float = 0.01  # Adam
    l2: float = 1e-2  # on the layer-0 embeddings each click edge involves, per edge
    negatives: int = 1  # videos drawn at random per click edge (one the user clicked is drawn again)
    init_std: float = 0.1
    seed: int = 0
    threads: int | None = 1  # torch threads while training (None: torch's default), as models/trainer.py's fit

    def to_dict(self) -> dict:
        return asdict(self)


def normalized_adjacency(users: np.ndarray, videos: np.ndarray, n_users: int, n_videos: int) -> torch.Tensor:
    """The [U + V, U + V] sparse D^-1/2 A D^-1/2 of the bipartite click graph (users first, then videos); a
    pair clicked many times is one edge."""
    edges = np.unique(np.stack([users, videos]).astype(np.int64), axis=1)
    rows = np.concatenate([edges[0], n_users + edges[1]])
    cols = np.concatenate([n_users + edges[1], edges[0]])
    degree = np.bincount(rows, minlength=n_users + n_videos).astype(np.float64)
    scale = 1.0 / np.sqrt(np.maximum(degree, 1.0))
    values = (scale[rows] * scale[cols]).astype(np.float32)
    size = (n_users + n_videos, n_users + n_videos)
    index = torch.from_numpy(np.stack([rows, cols]))
    return torch.sparse_coo_tensor(index, torch.from_numpy(values), size, check_invariants=True).coalesce()


class _Propagate(torch.autograd.Function):
    """adjacency @ x, whose gradient is adjacency @ grad: the matrix is symmetric, so the backward pass needs
    no transpose (torch's would re-sort the sparse matrix on every step, a third of a step's time)."""

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return adjacency @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, ctx.adjacency @ grad


class LightGCN(nn.Module):
    def __init__(self, n_users: int, n_videos: int, config: GraphConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.n_users, self.n_videos, self.layers = n_users, n_videos, config.layers
        weight = torch.randn(n_users + n_videos, config.dim, generator=generator) * config.init_std
        self.embedding = nn.Parameter(weight)

    def forward(self, adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(users [U, d], videos [V, d]): the mean of layers 0..K."""
        layer, total = self.embedding, self.embedding
        for _ in range(self.layers):
            layer = _Propagate.apply(adjacency, layer)
            total = total + layer
        final = total / (self.layers + 1)
        return final[: self.n_users], final[self.n_users :]


def bpr_loss(
    model: LightGCN,
    adjacency: torch.Tensor,
    users: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    l2_weight: float,
) -> torch.Tensor:
    """BPR over every (click, sampled video) pair, plus L2 on the layer-0 embeddings each edge involves (its
    user, its video, the mean over its sampled videos), per edge. Gathers are `index_select` (its backward
    adds, where indexing's sorts) and L2 weighs each row by how often the step uses it: a step costs 3x less."""
    user_final, video_final = model(adjacency)
    u = user_final.index_select(0, users)  # [E, d]
    positive = (u * video_final.index_select(0, positives)).sum(-1)  # [E]
    negative = torch.stack([(u * video_final.index_select(0, n)).sum(-1) for n in negatives.T], 1)  # [E, n]
    ranking = -F.logsigmoid(positive[:, None] - negative).mean()
    n_users, size = model.n_users, len(model.embedding)
    uses = (
        torch.bincount(users, minlength=size)
        + torch.bincount(n_users + positives, minlength=size)
        + torch.bincount(n_users + negatives.flatten(), minlength=size) / negatives.shape[1]
    )
    l2 = (uses * model.embedding.pow(2).sum(-1)).sum() / (2 * len(users))
    return ranking + l2_weight * l2


def sample_negatives(
    edge_keys: torch.Tensor, users: torch.Tensor, n_videos: int, count: int, generator: torch.Generator
) -> torch.Tensor:
    """[E, count] videos drawn uniformly for each edge's user; a draw the user clicked is drawn once more
    (a second hit is kept: rare, and harmless)."""
    drawn = torch.randint(n_videos, (len(users), count), generator=generator)
    clicked = _holds(edge_keys, users[:, None] * n_videos + drawn)
    if clicked.any():
        again = torch.randint(n_videos, (int(clicked.sum()),), generator=generator)
        drawn[clicked] = again
    return drawn


def _holds(sorted_keys: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    at = torch.searchsorted(sorted_keys, keys).clamp(max=len(sorted_keys) - 1)
    return sorted_keys[at] == keys


def train_graph(
    users: np.ndarray, videos: np.ndarray, n_users: int, n_videos: int, config: GraphConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Learn LightGCN on click edges (user index, video index; repeats count once) and return the final
    (propagated) user [n_users, dim] and video [n_videos, dim] embeddings as float32 arrays. Deterministic
    for a seed."""
    config = config or GraphConfig()
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _train(users, videos, n_users, n_videos, config)
    finally:
        torch.set_num_threads(threads)


def _train(
    users: np.ndarray, videos: np.ndarray, n_users: int, n_videos: int, config: GraphConfig
) -> tuple[np.ndarray, np.ndarray]:
    generator = torch.Generator().manual_seed(config.seed)
    model = LightGCN(n_users, n_videos, config, generator)
    adjacency = normalized_adjacency(users, videos, n_users, n_videos)
    keys = np.unique(np.asarray(users, np.int64) * n_videos + np.asarray(videos, np.int64))
    edge_users, edge_videos = torch.from_numpy(keys // n_videos), torch.from_numpy(keys % n_videos)
    edge_keys = torch.from_numpy(keys)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    for _ in range(config.epochs if len(keys) else 0):
        negatives = sample_negatives(edge_keys, edge_users, n_videos, config.negatives, generator)
        optimizer.zero_grad()
        bpr_loss(model, adjacency, edge_users, edge_videos, negatives, config.l2).backward()
        optimizer.step()
    with torch.no_grad():
        user_final, video_final = model(adjacency)
    return user_final.numpy().astype(np.float32), video_final.numpy().astype(np.float32)
