"""A detached local server process: started once, tracked by a pid file, stopped on request.

The process outlives the command that started it (``recsys services up`` returns), so its
pid and log live in the state folder; every later command finds it there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class ServiceError(RuntimeError):
    """A local service could not be started, reached or stopped; the message says why."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


class ManagedProcess:
    """One server process with its pid file and log in ``home``."""

    def __init__(self, name: str, home: Path) -> None:
        self.name = name
        self.home = home
        self.pid_file = home / f"{name}.pid"
        self.log_file = home / f"{name}.log"

    @property
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if alive(pid) else None

    def start(self, command: Sequence[str], env: dict[str, str] | None = None) -> int:
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                list(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self.pid_file.write_text(str(proc.pid))
        self._popen = proc
        return proc.pid

    def wait_ready(self, probe: Callable[[], bool], timeout_s: float) -> None:
        """Poll ``probe`` until it passes; fail fast with the log's tail if the process dies."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pid is None or self._exited():
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(f"{self.name} died on start. Last lines of {self.log_file}:\n{tail(self.log_file)}")
            if probe():
                return
            time.sleep(0.25)
        self.stop()
        raise ServiceError(
            f"{self.name} did not become ready within {timeout_s:.0f}s. "
            f"Last lines of {self.log_file}:\n{tail(self.log_file)}"
        )

    def _exited(self) -> bool:
        popen: subprocess.Popen[bytes] | None = getattr(self, "_popen", None)
        return popen is not None and popen.poll() is not None

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout_s``. Returns whether anything was running."""
        pid = self.pid
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while alive(pid) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.2)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self._reap()
        self.pid_file.unlink(missing_ok=True)
        return True

    def _reap(self) -> None:
        popen: subprocess.Popen[bytes] | None = getattr(self, "_popen", None)
        if popen is not None:
            popen.poll()


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (on this host); a zombie does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is not alive for our purposes. But a process whose main
    # thread has ended shows as a zombie while its other threads still run (and hold its ports).
    with contextlib.suppress(OSError):
        threads = [_state(task / "stat") for task in Path(f"/proc/{pid}/task").iterdir()]
        return any(state != "Z" for state in threads)
    return True


def _state(stat: Path) -> str:
    """The state letter of a /proc stat file (R, S, Z, ...); "Z" when the thread is already gone."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
