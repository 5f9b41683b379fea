"""The publishers of an evaluated model, in a process of its own, for ``test_faults.py`` to SIGKILL.

Run as a module (``python -m tests.model.publish_job HANDLES STORE HELD MARKER``), it
materialises the four publishers in a Spark of its own, configured from the ``RECSYS_*``
environment (the database among them), on an instance seeded with the handles in the JSON file
HANDLES (asset name -> handle), with the model store at STORE. The swap of collection HELD never
comes: once its staging copy is written and checked, the process writes the copy's name to
MARKER and waits there to be killed, so the test kills it at a known point rather than racing
a swap that takes milliseconds. Its lease on the store lapses after ``LEASE_TTL_S`` once the
process is killed: the default 60 s would only make the test's rerun wait longer.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from dagster import AssetMaterialization, AssetSelection, DagsterInstance, materialize
from pymongo.collection import Collection

from recsys_assets.definitions import build_resources
from recsys_assets.ingest import defs as ingest
from recsys_assets.model import defs as model
from recsys_assets.model.handles import HANDLE
from recsys_assets.model.publishing import staging_name
from recsys_assets.model.store import ModelStore
from recsys_core.settings import get_settings
from tests.model.conftest import PUBLISHERS

LEASE_TTL_S = 10.0


def hold_the_swap(held: str, marker: Path) -> None:
    """Every rename of a staging copy of ``held`` writes its name to ``marker`` and waits forever."""
    rename = Collection.rename

    def rename_unless_held(collection: Collection[Any], new_name: str, *args: Any, **kwargs: Any) -> Any:
        if collection.name.startswith(staging_name(held, "")):
            marker.write_text(collection.name)
            while True:
                time.sleep(60)
        return rename(collection, new_name, *args, **kwargs)

    Collection.rename = rename_unless_held  # type: ignore[method-assign,assignment]


def main(handles: Path, store: Path, held: str, marker: Path) -> None:
    hold_the_swap(held, marker)
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
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
