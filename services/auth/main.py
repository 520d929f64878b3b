"""`triggerline auth`: the IMS token service the other services get their tokens from."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from services.auth.app import build_app
from services.auth.credentials import load_credentials
from services.auth.settings import load_config
from services.common.logsetup import configure_logging

log = logging.getLogger(__name__)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="triggerline auth",
        description="IMS token service; configured by TRIGGERLINE_AUTH_* variables.",
    )
    parser.add_argument("--host", help="address to listen on")
    parser.add_argument("--port", type=int, help="port to listen on")
    parser.add_argument("--mode", choices=["oauth", "jwt", "none"], help="how to get tokens")
    args = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    config = load_config(args)
    settings = config.auth
    configure_logging("auth", config.log.level, config.log.format)
    credentials = load_credentials(settings)  # a ConfigurationError names the setting
    log.info(
        "auth on http://%s:%d: mode %s, IMS %s, %d clients (%s)",
        settings.host,
        settings.port,
        settings.mode,
        settings.ims_url,
        len(credentials.clients),
        ", ".join(sorted(credentials.clients)),
    )
    web.run_app(
        build_app(settings, credentials),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
    )
    return 0
