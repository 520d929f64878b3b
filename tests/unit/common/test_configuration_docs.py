"""docs/configuration.md is generated from the settings classes; it must not drift."""

from __future__ import annotations

from services.common.settings import env_names
from services.ops.configuration import REFERENCE, all_settings, rendered_document


def test_configuration_reference_is_up_to_date() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == rendered_document(), (
        "docs/configuration.md is out of date: run `make docs`"
    )


def test_every_setting_is_described() -> None:
    for cls in all_settings():
        for name, info in cls.model_fields.items():
            assert info.description, f"{cls.__name__}.{name} has no description"


def test_every_variable_is_in_the_reference() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    missing = [n for cls in all_settings() for n in env_names(cls) if f"`{n}`" not in text]
    assert not missing
