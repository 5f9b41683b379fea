"""Where the model stage keeps its files: one folder, laid out in one place.

The sample and the training ratings are persisted once and read back by every downstream
asset, so nothing is ever redrawn. Each fitted model lives in its own versioned folder; a
small pointer file names the candidate that the evaluation and publishing assets act on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys_core.settings import get_settings


def resolve_root(state_dir: str) -> Path:
    """``state_dir`` from a Config, or ``<RECSYS_STATE_DIR>/model`` when it is empty."""
    return Path(state_dir) if state_dir else get_settings().state_dir / "model"


@dataclass(frozen=True)
class ModelStore:
    root: Path

    @property
    def sample_path(self) -> Path:
        return self.root / "review_sample.parquet"

    @property
    def ratings_path(self) -> Path:
        return self.root / "training_ratings.parquet"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def model_dir(self, version: str) -> Path:
        return self.models_dir / version

    def evaluation_path(self, version: str) -> Path:
        return self.model_dir(version) / "evaluation.json"

    @property
    def candidate_path(self) -> Path:
        return self.models_dir / "candidate.json"

    def write_candidate(self, version: str) -> None:
        write_json(self.candidate_path, {"version": version, "path": str(self.model_dir(version))})

    def candidate_version(self) -> str:
        if not self.candidate_path.exists():
            raise FileNotFoundError(f"no model has been trained yet: {self.candidate_path} is missing")
        return str(read_json(self.candidate_path)["version"])


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` next to ``path`` first and rename it, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data
