from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServiceStatus:
    """What ``recsys services status`` reports for one service."""

    name: str
    managed: bool
    address: str
    pid: int | None
    reachable: bool
    log: Path | None

    def line(self) -> str:
        owner = (
            f"managed, pid {self.pid}"
            if self.managed and self.pid
            else ("managed, stopped" if self.managed else "external")
        )
        state = "up" if self.reachable else "DOWN"
        return f"{self.name:<6} {state:<5} {self.address}  ({owner})"
