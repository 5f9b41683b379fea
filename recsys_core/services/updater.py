"""The online updater as a managed process (``recsys updater``), started by ``recsys services up``.

Like the other services it is detached, with its pid file and log in ``<state>/updater/``.
It is ready once it has joined its consumer group (it writes ``updater.ready`` on its first
partition assignment). It gets the same ``RECSYS_*`` settings as the command that started it.
"""

from __future__ import annotations

import sys

from recsys_core.services.process import ManagedProcess
from recsys_core.services.status import ServiceStatus
from recsys_core.settings import Settings

READY_TIMEOUT_S = 60.0


class UpdaterService:
    name = "updater"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "updater"
        self.process = ManagedProcess("updater", self.home)
        self.ready_file = self.home / "updater.ready"

    def up(self) -> ServiceStatus:
        if self.process.pid is None:
            self.home.mkdir(parents=True, exist_ok=True)
            self.ready_file.unlink(missing_ok=True)
            command = [sys.executable, "-m", "recsys_cli", "updater", "--ready-file", str(self.ready_file)]
            self.process.start(command, env=self.settings.environment())
            self.process.wait_ready(self.ready_file.exists, timeout_s=READY_TIMEOUT_S)
        return self.status()

    def down(self) -> bool:
        return self.process.stop()

    def status(self) -> ServiceStatus:
        pid = self.process.pid
        return ServiceStatus(
            name=self.name,
            managed=True,
            address=f"group {self.settings.updater_group_id} on {self.settings.topic_interactions}",
            pid=pid,
            reachable=pid is not None and self.ready_file.exists(),
            log=self.process.log_file,
        )
