"""Java jars the project needs, pinned in pom files under services/ and resolved once with mvn
into the state folder."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from recsys_core.services.process import ServiceError
from recsys_core.settings import PROJECT_ROOT, Settings

KAFKA_POM = PROJECT_ROOT / "services" / "kafka" / "pom.xml"
SPARK_POM = PROJECT_ROOT / "services" / "spark" / "pom.xml"


def resolve(pom: Path, target: Path) -> list[Path]:
    """Copy the pom's runtime dependencies into ``target`` once and list the jars.

    A stamp of the pom's hash makes a changed pom resolve again.
    """
    stamp = target / ".pom-sha256"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text() == digest):
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ServiceError(
                f"Maven (mvn) is missing, and the jars of {pom} are not cached in {target}. "
                "Install Maven (apt-get install maven) and try again."
            )
        if target.exists():
            shutil.rmtree(target)
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={target}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(f"mvn could not resolve {pom}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        stamp.write_text(digest)
    return sorted(target.glob("*.jar"))


def kafka_jars(settings: Settings) -> list[Path]:
    return resolve(KAFKA_POM, settings.state_dir / "jars" / "kafka")


def spark_jars(settings: Settings) -> list[Path]:
    return resolve(SPARK_POM, settings.state_dir / "jars" / "spark")
