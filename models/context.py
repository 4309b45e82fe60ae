"""The context of an impression or a request: local hour, weekday, device and region.

The multi-task model reads it as features and predicts parts of it (the hour slot and the device of an
engagement); the recommender builds one per request. Device and region are free strings: the model
maps those it never saw in training to its "unknown" slot instead of failing.
"""
from __future__ import annotations

from dataclasses import dataclass

HOURS, WEEKDAYS = 24, 7
HOUR_SLOT_WIDTH = 3  # the context head predicts one of 8 three-hour slots, coarse enough to be learnable
HOUR_SLOTS = HOURS // HOUR_SLOT_WIDTH


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

    @property
    def hour_slot(self) -> int:
        return self.hour // HOUR_SLOT_WIDTH


def hour_slot_name(slot: int) -> str:
    return f"{slot * HOUR_SLOT_WIDTH:02d}-{(slot + 1) * HOUR_SLOT_WIDTH:02d}h"
