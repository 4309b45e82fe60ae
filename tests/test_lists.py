"""How a list is made from a ranked pool: calibrated to the user's category mix (index/diversity.py) and with
exploratory slots filled by Thompson sampling (index/exploration.py)."""

from __future__ import annotations

from collections import Counter
from datetime import date

import numpy as np
import pytest

from index.diversity import calibrated, calibration_kl, capped, target_mix
from index.exploration import exploration_picks, rng_for
from index.recommend import RecommendConfig

WEIGHT = RecommendConfig().calibration
pytestmark = pytest.mark.unit


def _pool(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """60 candidates in three categories, the best scores all in A (score order alone lists only A)."""
    categories = ["A"] * 20 + ["B"] * 20 + ["C"] * 20
    relevance = np.concatenate([rng.uniform(0.85, 1.0, 20), rng.uniform(0.7, 0.85, 20), rng.uniform(0.7, 0.85, 20)])
    return relevance, categories


def test_a_calibrated_list_follows_the_users_planted_mix():
    relevance, categories = _pool(np.random.default_rng(0))
    no_vectors = np.zeros((60, 1), np.float32)
    everyone = {"A": 1 / 3, "B": 1 / 3, "C": 1 / 3}
    planted = ["A"] * 12 + ["B"] * 6 + ["C"] * 2  # 60% A, 30% B, 10% C
    target = target_mix(planted, everyone, {}, prior_clicks=0, floor=0.0, categories=list(everyone))
    assert target == {"A": 0.6, "B": 0.3, "C": 0.1}
    listed = [categories[i] for i in calibrated(relevance, categories, no_vectors, target, 10, WEIGHT, 1.0)]
    by_category = Counter(listed)
    assert abs(by_category["A"] - 6) <= 1 and abs(by_category["B"] - 3) <= 1 and by_category["C"] == 1
    score_order = [categories[i] for i in np.argsort(-relevance)[:10]]
    assert calibration_kl(target, listed) < 0.05 < 1 < calibration_kl(target, score_order)
    narrow = target_mix(["A"] * 20, everyone, {}, prior_clicks=0, floor=0.1, categories=list(everyone))
    narrow_list = [categories[i] for i in calibrated(relevance, categories, no_vectors, narrow, 10, WEIGHT, 1.0)]
    capped_list = [categories[i] for i in capped(relevance, categories, no_vectors, 10, 0.4, 1.0)]
    assert Counter(narrow_list)["A"] >= 8 and Counter(capped_list)["A"] == 4  # one cap for everyone: 4 of 10
    assert calibration_kl({"A": 1.0}, narrow_list) < calibration_kl({"A": 1.0}, capped_list)
    broad = target_mix(["A", "B", "C"] * 5, everyone, {}, prior_clicks=0, floor=0.1, categories=list(everyone))
    broad_list = [categories[i] for i in calibrated(relevance, categories, no_vectors, broad, 10, WEIGHT, 1.0)]
    assert min(Counter(broad_list).values()) >= 2 and len(set(broad_list)) == 3


def test_the_target_mix_leans_on_everyone_until_the_user_is_known_and_follows_the_context():
    everyone = {"A": 0.5, "B": 0.5}
    one_click = target_mix(["A"], everyone, {}, prior_clicks=3, floor=0.0, categories=["A", "B"])
    many = target_mix(["A"] * 30, everyone, {}, prior_clicks=3, floor=0.0, categories=["A", "B"])
    assert 0.5 < one_click["A"] < many["A"] < 1.0
    evening = target_mix(["A"] * 5 + ["B"] * 5, everyone, {"B": 2.0}, prior_clicks=3, floor=0.0, categories=["A", "B"])
    assert evening["B"] == 2 * evening["A"]  # this context doubles everyone's B clicks
    floored = target_mix(["A"] * 10, everyone, {}, prior_clicks=0, floor=0.2, categories=["A", "B"])
    assert floored["B"] == 0.1 and abs(sum(floored.values()) - 1) < 1e-9


def test_thompson_sampling_tries_the_unseen_video_and_drops_the_ones_that_failed():
    """Candidates: a new video, ten seen 25 times and never clicked, one seen 25 times and clicked 10 times; all
    with the same prediction from the model (0.1)."""
    prior = np.full(12, 0.1)
    impressions = np.array([0] + [25] * 11, np.float64)
    clicks = np.array([0] * 11 + [10], np.float64)
    wins = Counter()
    for user in range(300):
        pick = exploration_picks(rng_for(f"u{user}", date(2026, 11, 28)), "thompson", prior, impressions, clicks, 20, 1)
        wins[pick[0]] += 1
    assert wins[11] > 250  # the one that earned clicks is tried most
    assert wins[0] > 5 * max(wins[i] for i in range(1, 11))  # the new video beats each one that failed
    without_winner = Counter(
        exploration_picks(
            rng_for(f"u{u}", date(2026, 11, 28)), "thompson", prior[:11], impressions[:11], clicks[:11], 20, 1
        )[0]
        for u in range(300)
    )
    assert without_winner[0] > 100  # a third of the slots to the unseen video, against 1/11 for each failed one


def test_exploration_is_the_same_for_the_same_user_and_day():
    prior = np.linspace(0.05, 0.3, 40)
    seen = np.zeros(40)

    def picks(user: str, day: date) -> list[int]:
        return exploration_picks(rng_for(user, day), "thompson", prior, seen, seen, 20, 3)

    today = date(2026, 11, 28)
    assert picks("u1", today) == picks("u1", today)
    assert picks("u1", today) != picks("u1", date(2026, 11, 29)) or picks("u1", today) != picks("u2", today)
    assert len(set(picks("u1", today))) == 3
