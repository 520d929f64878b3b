"""The wheel the image installs works on its own: built here, installed in a fresh virtualenv
outside the checkout from the hash lock, and run from a folder that holds no checkout.

This is what the Containerfile does (lock, then the wheel with --no-deps), minus the container:
schemas, the default routing file, templates and migrations must all travel as package data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
LOCK = REPO / "deploy" / "k8s" / "requirements.lock"

ROUND_TRIP = """
import services
from services.common.models import Outcome, OutcomeStatus
from services.common.serde import SCHEMAS_DIR, outcome_serde
record = Outcome(OutcomeStatus.SENT, "m-1", "mailer").to_record()
serde = outcome_serde()
decoded = serde.decode(serde.encode(record))
assert serde.encode(decoded) == serde.encode(record) and decoded["status"] == "SENT", decoded
print(services.__file__)
print(SCHEMAS_DIR)
"""


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(the virtualenv's bin folder, a working folder outside the checkout, a clean env)."""
    root = tmp_path_factory.mktemp("wheel")
    assert not root.resolve().is_relative_to(REPO)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TRIGGERLINE_", "PYTHON", "VIRTUAL_ENV"))
    }
    # Build from a clean copy: an in-tree build would reuse build/ and *.egg-info, whose
    # leftovers can hide a file the package data no longer names.
    source = root / "source"
    skip = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "var", "tests", "bench")
    shutil.copytree(REPO, source, symlinks=True, ignore=skip)
    dist = root / "dist"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)]
    _run(build, root, env)
    wheels = list(dist.glob("triggerline-*.whl"))
    assert len(wheels) == 1, wheels
    venv.EnvBuilder(with_pip=True, clear=True).create(root / "venv")
    bin_dir = root / "venv" / "bin"
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-cache-dir"]
    _run([*pip, "--require-hashes", "--no-deps", "-r", str(LOCK)], root, env)
    _run([*pip, "--no-deps", str(wheels[0])], root, env)
    _run([str(bin_dir / "python"), "-m", "pip", "check"], root, env)
    work = root / "work"
    work.mkdir()
    return bin_dir, work, env


def test_config_check_runs_from_the_installed_package(
    installed: tuple[Path, Path, dict[str, str]],
) -> None:
    bin_dir, work, env = installed
    out = _run([str(bin_dir / "triggerline"), "config", "check"], work, env)
    assert "configuration valid" in out and "campaigns" in out


def test_avro_round_trip_reads_schemas_from_site_packages(
    installed: tuple[Path, Path, dict[str, str]],
) -> None:
    bin_dir, work, env = installed
    module, schemas = _run([str(bin_dir / "python"), "-c", ROUND_TRIP], work, env).split()
    site = bin_dir.parent
    assert Path(module).is_relative_to(site) and Path(schemas).is_relative_to(site)


def test_migrations_run_from_the_installed_package(
    installed: tuple[Path, Path, dict[str, str]],
) -> None:
    bin_dir, work, env = installed
    url = f"sqlite:///{work / 'migrated.db'}"
    _run([str(bin_dir / "triggerline"), "db", "upgrade"], work, {**env, "TRIGGERLINE_DB_URL": url})
    assert (work / "migrated.db").stat().st_size > 0
