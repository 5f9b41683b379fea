"""`recsys services` starts, reports and stops a real mongod and a real Kafka broker, and
fails clearly instead of hanging."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys_core import services
from recsys_core.services.kafka import KafkaService
from recsys_core.services.mongod import MongoService
from recsys_core.services.process import alive
from recsys_core.settings import Settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def own_settings(tmp_path: Path, running_services: Settings) -> Iterator[Settings]:
    """Settings for a second, private set of services, apart from the session's ones.

    The Kafka jars come from the session's cache so the test does not resolve them again.
    """
    state = tmp_path / "state"
    (state / "jars").mkdir(parents=True)
    (state / "jars" / "kafka").symlink_to(running_services.state_dir / "jars" / "kafka")
    settings = Settings(
        state_dir=state, mongo_port=_free_port(), kafka_port=_free_port(), kafka_controller_port=_free_port()
    )
    yield settings
    services.down(settings)


def test_up_status_down(own_settings: Settings) -> None:
    started = services.up(own_settings)
    assert [(s.name, s.managed, s.reachable) for s in started] == [("mongod", True, True), ("kafka", True, True)]
    assert all(s.pid for s in started)

    again = services.up(own_settings)  # idempotent: the running services are reused
    assert [s.pid for s in again] == [s.pid for s in started]
    assert "up" in again[0].line()

    assert sorted(services.down(own_settings)) == ["kafka", "mongod"]
    after = services.status(own_settings)
    assert [(s.reachable, s.pid) for s in after] == [(False, None), (False, None)]
    assert services.down(own_settings) == []


def test_taken_port_is_a_clear_error(own_settings: Settings) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", own_settings.mongo_port))
        blocker.listen()
        with pytest.raises(services.ServiceError, match=f"port {own_settings.mongo_port} .* already taken"):
            MongoService(own_settings).up()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", own_settings.kafka_port))
        blocker.listen()
        with pytest.raises(services.ServiceError, match="RECSYS_KAFKA_PORT"):
            KafkaService(own_settings).up()


def test_a_service_that_dies_on_start_shows_its_log(own_settings: Settings, running_services: Settings) -> None:
    # A second mongod on the session's data folder cannot take its lock, and exits at once.
    clash = own_settings.model_copy(update={"state_dir": running_services.state_dir})
    clash_service = MongoService(clash)
    clash_service.process = type(clash_service.process)("mongod-clash", running_services.state_dir / "mongo")
    with pytest.raises(services.ServiceError, match="died on start") as failure:
        clash_service.up()
    assert "mongod-clash.log" in str(failure.value)


def test_missing_java_is_named(own_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without java
    with pytest.raises(services.ServiceError, match="Java is missing"):
        KafkaService(own_settings).up()


def test_configured_services_are_used_and_never_started(running_services: Settings, tmp_path: Path) -> None:
    external = Settings(
        state_dir=tmp_path / "unused",
        mongo_uri=running_services.effective_mongo_uri,
        kafka_bootstrap_servers=running_services.effective_kafka_bootstrap,
    )
    statuses = services.up(external)
    assert [(s.managed, s.reachable, s.pid) for s in statuses] == [(False, True, None), (False, True, None)]
    assert services.down(external) == []
    assert not (tmp_path / "unused" / "mongo").exists()
    assert not (tmp_path / "unused" / "kafka").exists()


def test_a_process_is_alive_while_any_thread_runs_and_dead_once_a_zombie() -> None:
    # The main thread ends first and shows as a zombie; the process's other thread still runs (and
    # could hold a port), so stopping must go on waiting for it.
    script = (
        "import ctypes, sys, threading, time\n"
        "threading.Thread(target=lambda: (sys.stdin.read(), time.sleep(0))).start()\n"
        "ctypes.CDLL(None).pthread_exit(None)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE)
    try:
        leader = Path(f"/proc/{child.pid}/stat")
        deadline = time.monotonic() + 30
        while leader.read_text().rsplit(")", 1)[1].split()[0] != "Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leader.read_text().rsplit(")", 1)[1].split()[0] == "Z"  # the main thread is gone
        assert alive(child.pid)
    finally:
        assert child.stdin is not None
        child.stdin.close()  # the other thread returns, and the process ends
        child.wait(timeout=30)
    assert not alive(child.pid)
