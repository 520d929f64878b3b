"""The image recipe: a base pinned by digest, every dependency from the hash lock, no wheel kept."""

from __future__ import annotations

import re
import tomllib

from services.ops.manifests import K8S
from services.resources import CONFIG_DIR, SCHEMAS_DIR

REPO = K8S.parents[1]
CONTAINERFILE = (K8S / "Containerfile").read_text(encoding="utf-8")
LOCK = (K8S / "requirements.lock").read_text(encoding="utf-8")


def _stages() -> list[list[str]]:
    stages: list[list[str]] = []
    for line in re.sub(r"\\\n\s*", " ", CONTAINERFILE).splitlines():
        if line.startswith("FROM "):
            stages.append([])
        if stages and line.strip() and not line.startswith("#"):
            stages[-1].append(line)
    return stages


def test_the_base_image_is_pinned_by_digest() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", CONTAINERFILE, re.M)
    assert base and re.fullmatch(r"python:3\.11-[\w.-]+@sha256:[0-9a-f]{64}", base.group(1))
    assert all(stage[0].startswith("FROM ${PYTHON_IMAGE}") for stage in _stages())


def test_the_final_stage_installs_from_the_lock_and_keeps_no_wheel() -> None:
    final = _stages()[-1]
    assert not any(line.startswith(("COPY", "ADD")) for line in final), "nothing copied in"
    installs = [line for line in final if "pip install" in line]
    assert any("--require-hashes" in i and "requirements.lock" in i for i in installs)
    assert all("--no-deps" in line for line in installs)
    assert any("--mount=type=bind,from=build" in line for line in installs)
    assert re.search(r"^USER 10001$", CONTAINERFILE, re.M)


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    entries = re.findall(
        r"^([A-Za-z0-9_.-]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}.*\n)+)", LOCK, re.M
    )
    pinned = {name.lower().replace("_", "-"): version for name, version, _ in entries}
    requirements = [line for line in LOCK.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert len(requirements) == len(entries), "every requirement carries hashes"
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    for requirement in project["project"]["dependencies"]:
        name, version = re.split(r"==", re.sub(r"\[.*\]", "", requirement))
        assert pinned.get(name.lower().replace("_", "-")) == version, (
            f"{requirement}: the lock is stale, run `make lock`"
        )


def test_runtime_files_are_package_data() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    globs = project["tool"]["setuptools"]["package-data"]["services.resources"]
    assert SCHEMAS_DIR.name == "schemas" and CONFIG_DIR.name == "config"
    assert any(g.startswith("schemas/") for g in globs) and any(
        g.startswith("config/") for g in globs
    )
