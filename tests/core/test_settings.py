"""Settings cross processes: a child given ``Settings.environment()`` uses the very same folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recsys_core.settings import PROJECT_ROOT, Settings

_CHILD = (
    "import json; from recsys_core.settings import Settings; s = Settings(); "
    "print(json.dumps([str(s.effective_data_dir.resolve()), str(s.state_dir.resolve()), s.effective_model_store_uri]))"
)


def test_a_child_in_another_folder_uses_the_same_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("RECSYS_STATE_DIR", "state")
    monkeypatch.setenv("RECSYS_DATA_DIR", "../data")
    monkeypatch.setenv("RECSYS_MODEL_STORE_URI", "models")
    settings = Settings()
    assert (settings.effective_data_dir, settings.state_dir) == (tmp_path / "data", here / "state")
    assert settings.effective_model_store_uri == str(here / "models")

    child = subprocess.run(
        [sys.executable, "-c", _CHILD],
        cwd=elsewhere,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(PROJECT_ROOT), **settings.environment()},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(child.stdout) == [str(tmp_path / "data"), str(here / "state"), str(here / "models")]
