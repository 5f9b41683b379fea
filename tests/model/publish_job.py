"""The publishers of an evaluated model, in a process of its own, for ``test_faults.py`` to SIGKILL.

Run as a module (``python -m tests.model.publish_job HANDLES STORE``), it materialises the four
publishers in a Spark of its own, configured from the ``RECSYS_*`` environment (the database
among them), on an instance seeded with the handles in the JSON file HANDLES (asset name ->
handle), with the model store at STORE. Its lease on the store lapses after ``LEASE_TTL_S``
once the process is killed: the default 60 s would only make the test's rerun wait longer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dagster import AssetMaterialization, AssetSelection, DagsterInstance, materialize

from recsys_assets.definitions import build_resources
from recsys_assets.ingest import defs as ingest
from recsys_assets.model import defs as model
from recsys_assets.model.handles import HANDLE
from recsys_assets.model.store import ModelStore
from recsys_core.settings import get_settings
from tests.model.conftest import PUBLISHERS

LEASE_TTL_S = 10.0


def main(handles: Path, store: Path) -> None:
    instance = DagsterInstance.ephemeral()
    for asset, handle in json.loads(handles.read_text()).items():
        instance.report_runless_asset_event(AssetMaterialization(asset, metadata={HANDLE: handle}))
    resources = build_resources(get_settings())
    resources["model_store"] = ModelStore(base_uri=str(store), mongo=resources["mongo"], lease_ttl_s=LEASE_TTL_S)
    result = materialize(
        [*ingest.ASSETS, *model.ASSETS, *model.CHECKS],
        selection=AssetSelection.assets(*PUBLISHERS),
        instance=instance,
        resources=resources,
    )
    print(json.dumps({"success": result.success}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
