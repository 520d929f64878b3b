"""Campaign's serverConf.xml: its `<pipelined>` attributes read into fetcher settings.

An operator migrating from Campaign points TRIGGERLINE_FETCHER_SERVER_CONF at the file they
already have. `pipelined_conf` decides what each attribute means; this module reads the file,
lets environment variables win over it and validates the result.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.common.errors import ConfigurationError
from services.fetcher.pipelined_conf import NOTICE, read_pipelined, variable
from services.fetcher.settings import FetcherSettings

log = logging.getLogger(__name__)


def apply_server_conf(settings: FetcherSettings) -> FetcherSettings:
    """`settings` with the `<pipelined>` attributes of TRIGGERLINE_FETCHER_SERVER_CONF applied.

    Returns `settings` itself when no file is named. A field set explicitly (in the environment,
    or passed to the constructor: pydantic's `model_fields_set`) wins over the file, and a
    notice says so. The result is a new, validated FetcherSettings: a bad value in the file
    gives the error a bad environment variable gives, naming the attribute too. Logs one
    notice per attribute.
    """
    if not settings.server_conf:
        return settings
    path = Path(settings.server_conf)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"{variable('server_conf')}: cannot read {path} ({exc.strerror or type(exc).__name__})"
            "; name an existing serverConf.xml, or leave the variable empty"
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    conf = read_pipelined(text, str(path))
    log.info("%s: reading <pipelined> from %s", NOTICE, path)
    explicit = settings.model_fields_set
    values: dict[str, Any] = {name: getattr(settings, name) for name in explicit}
    origin: dict[str, str] = {}
    for notice in conf.notices:
        log.info("%s", notice)
    for item in conf.assignments:
        name = variable(item.field)
        if item.field in explicit:
            log.info(
                "%s: %s=%s not applied: %s is set in the environment, which wins",
                NOTICE,
                item.attribute,
                item.value,
                name,
            )
            continue
        values[item.field] = item.value
        origin[item.field] = item.attribute
        note = f" ({item.note})" if item.note else ""
        log.info("%s: %s=%s -> %s%s", NOTICE, item.attribute, item.value, name, note)
    try:
        return FetcherSettings(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            where = variable(field)
            if field in origin:
                where = f"{origin[field]} in {path} (-> {where})"
            problems.append(f"{where}: {error['msg']}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
