"""Campaign templates: Jinja2 in a sandbox, autoescaped HTML, and no silent blanks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    meta,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

from services.common.errors import InvalidInput
from services.common.models import EmailRequest

PARTS = ("subject.txt", "body.html", "body.txt")

_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Rendered:
    """One personalised email: a one-line subject and the two bodies."""

    subject: str
    html: str
    text: str


def template_context(request: EmailRequest) -> dict[str, Any]:
    """The variables a template sees: the request's fields, then its `variables` at top level.

    The fixed names are `TEMPLATE_NAMES` of the routing file's model. `first_name` may be None
    (templates write `{{ first_name or "there" }}`). A declared variable the request lacks gets
    its default from the `TemplateSet`; a name declared nowhere is undefined, which
    StrictUndefined turns into an error (and `triggerline templates check` reports beforehand).
    """
    return {
        **request.variables,
        "first_name": request.first_name,
        "email": request.email,
        "products": list(request.products),
        "campaign": request.campaign,
        "profile_id": request.profile_id,
        "locale": request.locale,
        "variables": dict(request.variables),
    }


def _environment(templates_dir: Path) -> SandboxedEnvironment:
    # The sandbox keeps a template from reaching Python internals; StrictUndefined makes a
    # missing variable an error instead of an empty string in someone's inbox.
    return SandboxedEnvironment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class TemplateSet:
    """The compiled templates of every campaign, checked when loaded.

    A campaign whose template is missing or does not compile is kept in `broken` with the reason,
    so start-up names it and its requests are dead-lettered; other campaigns keep working.
    """

    def __init__(
        self,
        templates_dir: Path,
        templates: Mapping[str, str],
        defaults: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """`templates` maps campaign name to template folder name; `defaults` maps campaign
        name to its declared variables' fallback values (`declared_defaults`), which a request
        made before a variable was declared renders instead of failing."""
        self._env = _environment(templates_dir)
        self._globals = dict(self._env.globals)
        self._defaults = {campaign: dict(values) for campaign, values in (defaults or {}).items()}
        self._compiled: dict[str, dict[str, Template]] = {}
        self.broken: dict[str, str] = {}
        for campaign, folder in templates.items():
            try:
                self._compiled[campaign] = {
                    part: self._env.get_template(f"{folder}/{part}") for part in PARTS
                }
            except TemplateError as exc:
                where = f"{folder}/{getattr(exc, 'name', None) or ''}".rstrip("/")
                line = getattr(exc, "lineno", None)
                at = f" line {line}" if line else ""
                self.broken[campaign] = (
                    f"template {where!r}{at} of campaign {campaign!r}: "
                    f"{type(exc).__name__}: {exc.message or exc}"
                )

    def render(self, campaign: str, context: Mapping[str, Any]) -> Rendered:
        """Render all three parts, or raise `InvalidInput` naming the campaign and the part."""
        if campaign in self.broken:
            raise InvalidInput("template_broken", self.broken[campaign])
        parts = self._compiled.get(campaign)
        if parts is None:
            raise InvalidInput("unknown_campaign", f"no template is configured for {campaign!r}")
        # One namespace for the three parts: `Template.render` would merge the globals into a
        # fresh copy of the context for each part. The parts only read it (a `{% set %}` lands
        # in the part's own context), so sharing it is safe.
        namespace = {**self._globals, **self._defaults.get(campaign, {}), **context}
        rendered: dict[str, str] = {}
        for part, template in parts.items():
            try:
                rendered[part] = self._render(template, namespace)
            except Exception as exc:  # any failure of a template is that message's error
                raise InvalidInput(
                    "template_error",
                    f"{template.name} of campaign {campaign!r}: {type(exc).__name__}: {exc}",
                ) from exc
        subject = _WHITESPACE.sub(" ", rendered["subject.txt"]).strip()
        if not subject:
            raise InvalidInput("template_error", f"campaign {campaign!r} rendered an empty subject")
        return Rendered(subject=subject, html=rendered["body.html"], text=rendered["body.txt"])

    def free_names(self, campaign: str) -> dict[str, frozenset[str]]:
        """Per part, the names a campaign's template reads without defining them itself (with
        `{% set %}`, a loop or a macro), whether or not the branch using them ever runs; the
        environment's globals (`range`, ...) are left out. Empty for a broken campaign."""
        parts = self._compiled.get(campaign, {})
        loader = self._env.loader
        assert loader is not None
        found: dict[str, frozenset[str]] = {}
        for part, template in parts.items():
            assert template.name is not None
            source, _, _ = loader.get_source(self._env, template.name)
            names = meta.find_undeclared_variables(self._env.parse(source))
            found[part] = frozenset(names - set(self._globals))
        return found

    def _render(self, template: Template, namespace: dict[str, Any]) -> str:
        """`template.render(namespace)`, with `namespace` already holding the globals."""
        context = template.new_context(namespace, shared=True)
        try:
            return self._env.concat(template.root_render_func(context))
        except Exception:
            self._env.handle_exception()  # raises it again, with the template's line numbers
            raise
