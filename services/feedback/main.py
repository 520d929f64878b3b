"""`triggerline feedback`: the one-click unsubscribe endpoint and the bounce/complaint listener."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from services.common.health import HealthServer, Probes
from services.common.logsetup import configure_logging
from services.common.runtime import freeze_startup_heap
from services.common.token_settings import refuse_development_settings
from services.feedback.app import FeedbackService
from services.feedback.settings import FeedbackConfig, insecure_settings, load_config

log = logging.getLogger(__name__)


def refuse_insecure(config: FeedbackConfig) -> None:
    """Stop before serving anything with a public key or a name that cannot exist, unless
    `TRIGGERLINE_TOKENS_DEVELOPMENT` says this is a laptop; then only warn."""
    for problem in refuse_development_settings(
        insecure_settings(config), config.tokens.development
    ):
        log.warning("development only: %s", problem)


async def _serve(service: FeedbackService) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await service.serve(stop)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="triggerline feedback", description=__doc__)
    parser.parse_args(argv)
    config = load_config()
    configure_logging("feedback", config.log.level, config.log.format)
    refuse_insecure(config)
    probes = Probes()
    probes.not_ready("listeners", "starting")
    settings = config.feedback
    health = HealthServer(settings.health_host, settings.health_port, probes).start()
    try:
        service = FeedbackService.build(config, probes)
        log.debug("start-up heap frozen: %d objects", freeze_startup_heap())
        asyncio.run(_serve(service))
    finally:
        health.stop()
    return 0
