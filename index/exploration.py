"""Exploration that learns: a list's exploratory slots go to new or little-seen videos by Thompson sampling.

A video seen fewer than `RecommendConfig.little_seen` times has a click posterior Beta(s m + clicks,
s (1 - m) + impressions - clicks): the prior's mean m is the model's P(click) for this user in this context
(what its content and the context promise), worth s pseudo-impressions (`RecommendConfig.prior_impressions`);
the evidence is every user's impressions of it so far. Each slot goes to the highest draw from these
posteriors, so a video nobody has seen gets tried, one that was tried and not clicked fades, and one that
was clicked gets tried more, until it is seen enough to compete in the ranking on its own.

Draws come from a generator seeded by (user, day), as the candidates to explore are: the same request the
same day gives the same list (and a batch run gives what `recommend` gives), a new day a new draw.
`random` (the comparison) fills the slots with a uniform pick among the same candidates instead.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np

EXPLORATION = ("thompson", "random")


def rng_for(user_id: str, day: date) -> random.Random:
    """The generator of one user's exploration on one day (seeded from the text: the same on every machine)."""
    return random.Random(f"{user_id}:{day.isoformat()}")


def little_seen(video_ids: Sequence[str], impressions: Mapping[str, int], below: int) -> list[str]:
    """The videos with fewer than `below` impressions (none yet: new), in catalog order."""
    return [v for v in video_ids if impressions.get(v, 0) < below]


def exploration_picks(
    rng: random.Random,
    how: str,
    prior_mean: np.ndarray,
    impressions: np.ndarray,
    clicks: np.ndarray,
    prior_impressions: float,
    n: int,
) -> list[int]:
    """Indices of the n candidates (of those given) that get the exploratory slots, the first one first."""
    if n <= 0 or len(prior_mean) == 0:
        return []
    if how == "random":
        return rng.sample(range(len(prior_mean)), min(n, len(prior_mean)))
    mean = np.clip(prior_mean, 1e-4, 1 - 1e-4)
    alpha = prior_impressions * mean + clicks
    beta = prior_impressions * (1 - mean) + np.maximum(impressions - clicks, 0)
    draws = np.array([rng.betavariate(float(a), float(b)) for a, b in zip(alpha, beta)])
    return [int(i) for i in np.argsort(-draws, kind="stable")[:n]]
