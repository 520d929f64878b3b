"""Settings and the variables named around them agree: every `TRIGGERLINE_*` a doc, a manifest
or the code names is a declared setting (or one of the few script and test variables), and
every declared setting is read somewhere, so none is a knob that does nothing."""

from __future__ import annotations

import re

import pytest
from pydantic_settings import BaseSettings

from services.common.settings import REPO_ROOT
from services.ops.configuration import all_settings

VARIABLE = re.compile(r"\bTRIGGERLINE_[A-Z0-9_]*[A-Z0-9]\b")
# Variables that are not service settings: the local scripts', and the test and benchmark
# harnesses'.
NOT_SETTINGS = re.compile(
    r"^TRIGGERLINE_(KAFKA_(PORT|HOME)|POSTGRES_(PORT|HOME)|TEST_[A-Z_]+"
    r"|CHAOS_[A-Z_]+|BENCH_[A-Z_]+)$"
)
# Settings that were removed, still named where an upgrade needs them (the feedback service's
# legacy key takes the former secret's value).
FORMER = {"TRIGGERLINE_MAILER_UNSUBSCRIBE_SECRET", "TRIGGERLINE_MAILER_UNSUBSCRIBE_URL"}
# Where users and operators read variable names.
WHERE = ("README.md", "docs/*.md", "deploy/**/*.yaml", "deploy/**/*.env", "services/**/*.py")


def _variables(cls: type[BaseSettings]) -> dict[str, str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper(): name for name in cls.model_fields}


DECLARED = {v: n for cls in all_settings() for v, n in _variables(cls).items()}


def _named() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for pattern in WHERE:
        for path in REPO_ROOT.glob(pattern):
            for variable in VARIABLE.findall(path.read_text(encoding="utf-8")):
                found.setdefault(variable, set()).add(str(path.relative_to(REPO_ROOT)))
    return found


def test_every_variable_named_in_docs_manifests_and_code_is_a_setting() -> None:
    named = _named()
    assert len(named) > 50  # the scan sees the documents at all
    # A prefix written on its own (`TRIGGERLINE_TOKENS_*`) names a group, not a variable.
    groups = {v.rsplit("_", 1)[0] for v in DECLARED} | {"TRIGGERLINE"}
    unknown = {
        variable: sorted(places)
        for variable, places in named.items()
        if variable not in DECLARED.keys() | groups | FORMER and not NOT_SETTINGS.match(variable)
    }
    assert not unknown, (
        f"named but not declared (misspelt, or a setting that was removed): {unknown}"
    )


def _read(field: str) -> bool:
    """Whether the code reads `<something>.field` (a declaration, `field: type = ...`, does not
    count; a method of the settings class reading `self.field` does)."""
    attribute = re.compile(rf"\.{field}\b")
    return any(
        attribute.search(path.read_text(encoding="utf-8"))
        for path in (REPO_ROOT / "services").rglob("*.py")
    )


@pytest.mark.parametrize("cls", all_settings(), ids=lambda cls: cls.__name__)
def test_every_declared_setting_is_read(cls: type[BaseSettings]) -> None:
    unread = [name for name in cls.model_fields if not _read(name)]
    assert not unread, f"{cls.__name__} declares settings nothing reads: {unread}"
