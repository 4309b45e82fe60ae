"""The context of an impression or a request: local hour, weekday, device and region.

The multi-task model reads it as features and predicts parts of it (the hour slot and the device of an
engagement); the recommender builds one per request. Device and region are free strings: the model
maps those it never saw in training to its "unknown" slot instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # only for annotations: the UI imports this module and need not load torch
    import numpy as np
    import torch

HOURS, WEEKDAYS = 24, 7
HOUR_SLOT_WIDTH = 3  # the context head predicts one of 8 three-hour slots, coarse enough to be learnable
HOUR_SLOTS = HOURS // HOUR_SLOT_WIDTH

Hours = TypeVar("Hours", int, "np.ndarray", "torch.Tensor")


@dataclass(frozen=True)
class Context:
    hour: int  # 0-23, local time
    weekday: int  # 0 = Monday
    device: str | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.hour, int) and 0 <= self.hour < HOURS):
            raise ValueError(f"hour must be an integer 0-23, not {self.hour!r}")
        if not (isinstance(self.weekday, int) and 0 <= self.weekday < WEEKDAYS):
            raise ValueError(f"weekday must be an integer 0-6 (0 = Monday), not {self.weekday!r}")


def hour_slot(hour: Hours) -> Hours:
    """The three-hour slot (0-7) of a local hour: an int, an array or a tensor of hours."""
    return hour // HOUR_SLOT_WIDTH


DAYPARTS = ((0, 6, "at night"), (6, 12, "in the morning"), (12, 18, "in the afternoon"), (18, 24, "in the evening"))


def daypart(hour: int) -> str:
    """The part of the day an hour falls in, as a phrase ("in the evening"): what popularity is counted by."""
    for start, end, name in DAYPARTS:
        if start <= hour < end:
            return name
    raise ValueError(f"hour must be 0-23, not {hour!r}")
