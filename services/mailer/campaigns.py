"""The campaigns the mailer knows, with their templates, reloaded when an unknown one appears."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from services.common.campaign_config import Campaign
from services.common.personalisation import LinkPolicy, declared_defaults
from services.common.pipeline_config import PipelineConfig, load_pipeline_config
from services.mailer.templates import TemplateSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignSnapshot:
    """One consistent view: the routing file's campaigns and their compiled templates."""

    campaigns: dict[str, Campaign]
    templates: TemplateSet


def campaign_defaults(config: PipelineConfig) -> dict[str, dict[str, str]]:
    """Per campaign, what each declared variable renders when a request lacks it."""
    return {
        name: declared_defaults(config.campaign_variables(name), LinkPolicy.of(campaign))
        for name, campaign in config.campaigns.items()
    }


def snapshot(config: PipelineConfig, templates_dir: Path) -> CampaignSnapshot:
    templates = TemplateSet(
        templates_dir,
        {name: c.template for name, c in config.campaigns.items()},
        campaign_defaults(config),
    )
    return CampaignSnapshot(dict(config.campaigns), templates)


class CampaignCatalog:
    """Campaign lookups; a campaign added to the routing file is found without a restart.

    A request for an unknown campaign reloads the file and templates when the file changed
    (checked at most once a second) or `reload_every` seconds have passed, so a stream of
    unknown requests cannot hammer the disk.
    """

    def __init__(self, config_path: Path, templates_dir: Path, reload_every: float = 10.0) -> None:
        self._config_path = config_path
        self._templates_dir = templates_dir
        self._reload_every = reload_every
        self._lock = threading.Lock()
        self._mtime = self._modified()
        self._current = snapshot(load_pipeline_config(config_path), templates_dir)
        self._loaded_at = self._checked_at = time.monotonic()

    @property
    def current(self) -> CampaignSnapshot:
        return self._current

    def lookup(self, name: str) -> tuple[Campaign, TemplateSet] | None:
        current = self._current
        if name not in current.campaigns:
            current = self._maybe_reload()
        campaign = current.campaigns.get(name)
        return None if campaign is None else (campaign, current.templates)

    def _modified(self) -> float:
        try:
            return self._config_path.stat().st_mtime
        except OSError:
            return 0.0

    def _maybe_reload(self) -> CampaignSnapshot:
        with self._lock:
            now = time.monotonic()
            if now - self._checked_at < 1.0:
                return self._current
            self._checked_at = now
            mtime = self._modified()
            if mtime != self._mtime or now - self._loaded_at >= self._reload_every:
                self._loaded_at, self._mtime = now, mtime
                try:
                    self._current = snapshot(
                        load_pipeline_config(self._config_path), self._templates_dir
                    )
                    log.info("reloaded campaigns: %s", ", ".join(sorted(self._current.campaigns)))
                except Exception as exc:  # keep the working snapshot; the file is mid-edit
                    log.error("could not reload %s: %s", self._config_path, exc)
            return self._current
