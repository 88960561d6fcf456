"""The image's user can open its spool: the image's layout reproduced without Docker.

deploy/Dockerfile runs as a non-root user. The spool it used to get (``./spool`` under
``/app``, which root owns) could not be created by that user; the spool now sits in a
folder made for that user. Both layouts are rebuilt here under a scratch root, and a
process running as the image's uid (``setpriv``) opens the spool with the project's code.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import yaml

ROOT = Path(__file__).parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
OPEN_SPOOL = """
import asyncio, os, sys
from pipeline.config import load
from pipeline.spool.spool import Spool

async def main():
    config = load(os.environ)
    spool = await Spool.open(config.spool_dir, config.spool_max_bytes)
    await spool.close()
    print("opened", os.path.abspath(config.spool_dir))

asyncio.run(main())
"""


def dockerfile_env() -> dict[str, str]:
    env = {}
    for block in re.findall(r"^ENV (.+?)(?<!\\)$", DOCKERFILE, re.M | re.S):
        for pair in block.replace("\\\n", " ").split():
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def image_uid() -> int:
    (uid,) = re.findall(r"useradd .*--uid (\d+)", DOCKERFILE)
    return int(uid)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A root-owned folder every user may enter, holding the code the user will run."""
    root = Path(tempfile.mkdtemp(prefix="plug-image-", dir="/tmp"))
    try:
        root.chmod(0o755)
        lib = root / "lib"
        shutil.copytree(ROOT / "pipeline", lib / "pipeline")
        shutil.copytree(Path(msgspec.__file__).parent, lib / "msgspec")
        for path in (lib, *lib.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (root / "app").mkdir(mode=0o755)  # WORKDIR /app: made by root, as in the image
        yield root
    finally:
        shutil.rmtree(root)


def python_for_others() -> str:
    """An interpreter another user can run (the suite's own may sit under /root)."""
    for candidate in ("/usr/local/bin/python3.11", "/usr/bin/python3.11"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise AssertionError("no python3.11 outside /root to run as the image's user")


def open_spool_as_image_user(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    uid = image_uid()
    return subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
         python_for_others(), "-c", OPEN_SPOOL],
        cwd=root / "app", capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "PYTHONPATH": str(root / "lib"),
             **env},
    )  # fmt: skip


def test_the_old_layout_cannot_open_its_spool(scratch: Path) -> None:
    """``./spool`` relative to the root-owned WORKDIR: what the image did before."""
    env = {k: v for k, v in dockerfile_env().items() if k != "PLUG_PIPELINE_SPOOL_DIR"}
    result = open_spool_as_image_user(scratch, env)
    assert result.returncode != 0
    assert "PermissionError" in result.stderr, result.stderr
    assert "spool" in result.stderr.splitlines()[-1]


def test_the_image_layout_opens_its_spool_as_the_image_user(scratch: Path) -> None:
    env = dockerfile_env()
    spool_dir = env["PLUG_PIPELINE_SPOOL_DIR"]
    assert spool_dir.startswith("/")
    assert not spool_dir.startswith("/app")
    assert f"install -d -o pipeline -g pipeline -m 0750 {spool_dir}" in DOCKERFILE
    assert f'VOLUME ["{spool_dir}"]' in DOCKERFILE
    # The Dockerfile's `install -d -o pipeline`, under the scratch root.
    folder = scratch / spool_dir.lstrip("/")
    folder.mkdir(parents=True)
    os.chown(folder, image_uid(), image_uid())
    folder.chmod(0o750)
    result = open_spool_as_image_user(scratch, {**env, "PLUG_PIPELINE_SPOOL_DIR": str(folder)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"opened {folder}"
    assert {p.stat().st_uid for p in folder.iterdir()} == {image_uid()}  # it wrote there


def test_compose_runs_the_broker_version_we_test_with_a_loader_and_postgres() -> None:
    pom = (ROOT / "deploy" / "kafka-local" / "pom.xml").read_text()
    (version,) = re.findall(r"<kafka.version>([^<]+)</kafka.version>", pom)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["kafka"]["image"] == f"apache/kafka:{version}"
    assert services["loader"]["command"][0] == "load"
    assert "postgres" in services["loader"]["depends_on"]
    spool = dockerfile_env()["PLUG_PIPELINE_SPOOL_DIR"]
    assert f"spool:{spool}" in services["ingress"]["volumes"]
