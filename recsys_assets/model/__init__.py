"""Model stage: sample, features, ALS, evaluation and publishing (filled in by the model pipeline work)."""

from __future__ import annotations

from typing import Any

ASSETS: list[Any] = []
CHECKS: list[Any] = []
JOBS: list[Any] = []
SCHEDULES: list[Any] = []
SENSORS: list[Any] = []
