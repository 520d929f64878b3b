"""`triggerline simulator`: the pipeline consume API, IMS and the trigger generator on one port."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from aiohttp import web

from services.common.logsetup import configure_logging
from services.simulator.app import build_app
from services.simulator.settings import load_config

log = logging.getLogger(__name__)

# command-line option -> settings field; every option is also TRIGGERLINE_SIMULATOR_<FIELD>
_OPTIONS: dict[str, tuple[type, str]] = {
    "host": (str, "address to listen on"),
    "port": (int, "port to listen on"),
    "triggers": (int, "generate exactly N envelopes (repeats included) then stop; 0 = unbounded"),
    "rate": (float, "envelopes per second; 0 = as fast as possible"),
    "burst": (int, "generate N at once, then pause to keep the average rate"),
    "seed": (int, "generator seed"),
    "visitors": (int, "visitor population size"),
    "profiles": (int, "visitors below this index have a profile"),
    "unprofiled-share": (float, "share of triggers from visitors without a profile"),
    "repeat-share": (float, "share of envelopes repeating an earlier messageId"),
    "malformed-share": (float, "share of deliberately malformed envelopes"),
    "unknown-share": (float, "share of envelopes with an unknown trigger id"),
    "no-mcid-share": (float, "share of triggers without the mcId key"),
    "zero-mcid-share": (float, "share of triggers whose mcId is 38 zeros"),
    "empty-mcid-share": (float, "share of triggers whose mcId is empty"),
    "declared-only-share": (float, "share whose mcId no profile knows (declared id only)"),
    "missing-page-url-share": (float, "share of triggers without pageURL"),
    "missing-products-share": (float, "share of triggers without eVar5 and products"),
    "missing-search-terms-share": (float, "share of search abandonments without eVar7"),
    "extra-dimensions-share": (float, "share with unknown dimensions of odd types"),
    "stray-space-share": (float, "share spelling the shopper eVar ' eVar01'"),
    "huge-arrays-share": (float, "share with thousands of entries per per-hit array"),
    "non-ascii-share": (float, "share with non-ASCII product names, terms and page"),
    "cart-weight": (float, "relative weight of cart abandonment"),
    "browse-weight": (float, "relative weight of browse abandonment"),
    "search-weight": (float, "relative weight of search abandonment"),
    "purchase-weight": (float, "relative weight of purchases"),
    "partitions": (int, "partitions of the pipeline topic"),
    "retention-messages": (int, "envelopes kept per partition"),
    "retention-age": (str, "age after which envelopes are gone, e.g. 3d or 90s"),
    "oauth-token-lifetime": (str, "lifetime of client-credentials tokens, e.g. 24h"),
    "jwt-token-lifetime": (str, "lifetime of JWT-exchange tokens, e.g. 24h"),
    "jwt-public-key-file": (str, "PEM public key or certificate for the JWT exchange"),
}


def overrides(argv: list[str]) -> dict[str, Any]:
    """Settings given on the command line; the rest come from the environment or defaults."""
    parser = argparse.ArgumentParser(prog="triggerline simulator", description=__doc__)
    for option, (kind, help_line) in _OPTIONS.items():
        parser.add_argument(f"--{option}", type=kind, help=help_line)
    parser.add_argument(
        "--no-generate",
        dest="generate",
        action="store_false",
        default=None,
        help="serve only injected envelopes",
    )
    args = vars(parser.parse_args(argv))
    return {name: value for name, value in args.items() if value is not None}


def main(argv: list[str]) -> int:
    config = load_config(overrides(argv))
    settings = config.simulator
    configure_logging("simulator", config.log.level, config.log.format)
    app = build_app(settings)
    target = settings.triggers or "unbounded"
    log.info(
        "simulator on http://%s:%d: topic %s, %d partitions, %s envelopes at %s/s",
        settings.host,
        settings.port,
        settings.topic,
        settings.partitions,
        target,
        settings.rate or "max",
    )
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
    return 0
