"""Where the pipeline is: a forced URL, or an endpoint discovery service, as one pluggable step.

Campaign's pipelined asks `discoverPipelineEndpoint` which Pipeline Services endpoint serves the
tenant unless `forcedPipelineEndpoint` names one. Adobe documents neither the request nor the
answer, so the contract below is our inference (docs/configuration.md says so too):

    GET {discover_pipeline_endpoint}/v1/endpoints
    Authorization: Bearer <IMS token>           (when a token source is given)
    Accept: application/json, text/plain;q=0.5

    200 {"endpoints": [{"url": "https://producer-pipeline-...adobe.net"}, ...]}
        the first entry with an http(s) URL wins; entries may also be bare URL strings, and
        a bare JSON list of entries, or one JSON string, is read the same way
    200 https://producer-pipeline-...adobe.net
        a plain body holding one URL

The answer is the pipeline's base URL, to which the fetcher appends `/pipeline/topics/...`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from services.common.errors import ConfigurationError, TransientFailure
from services.fetcher.settings import FetcherSettings

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/v1/endpoints"
CONNECT_TIMEOUT = 5.0  # seconds
READ_TIMEOUT = 10.0  # seconds
MAX_ANSWER_BYTES = 64 * 1024  # an answer names a few URLs; anything longer is not one

TokenSource = Callable[[], str]


class EndpointDiscovery(Protocol):
    """One way of finding the pipeline's base URL."""

    def pipeline_endpoint(self) -> str:
        """The pipeline's base URL, without a trailing slash; raises TransientFailure."""
        ...


@dataclass(frozen=True)
class ForcedEndpoint:
    """The URL configured in TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT (forcedPipelineEndpoint)."""

    url: str

    def pipeline_endpoint(self) -> str:
        return self.url.rstrip("/")


class DiscoveryService:
    """Asks an endpoint discovery service (discoverPipelineEndpoint) for the pipeline's URL.

    `token_source` returns the IMS bearer token (e.g. `TokenClient.token`); without one the
    request carries no Authorization header, and whatever it raises (TokenClient's
    TransientFailure or PermanentFailure) goes to the caller. One attempt per call: the caller
    decides whether to retry a TransientFailure.
    """

    def __init__(
        self,
        base_url: str,
        token_source: TokenSource | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
    ) -> None:
        self._url = base_url.rstrip("/") + DISCOVERY_PATH
        self._token_source = token_source
        self._session = session or requests.Session()
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"DiscoveryService({_shown(self._url)!r})"

    def close(self) -> None:
        self._session.close()

    def pipeline_endpoint(self) -> str:
        headers = {"Accept": "application/json, text/plain;q=0.5"}
        if self._token_source is not None:
            headers["Authorization"] = f"Bearer {self._token_source()}"
        where = _shown(self._url)
        try:
            with self._session.get(
                self._url, headers=headers, timeout=self._timeout, stream=True
            ) as response:
                if response.status_code != 200:
                    raise TransientFailure(
                        f"endpoint discovery at {where} answered HTTP {response.status_code}"
                    )
                body = _bounded_body(response)
                content_type = response.headers.get("Content-Type", "")
        except requests.RequestException as exc:
            raise TransientFailure(
                f"endpoint discovery at {where} unreachable: {type(exc).__name__}"
            ) from None
        try:
            return endpoint_from_answer(body, content_type)
        except ValueError as exc:
            raise TransientFailure(f"endpoint discovery at {where}: {exc}") from None


def endpoint_from_answer(body: str, content_type: str = "") -> str:
    """The pipeline base URL in a discovery answer (see the module docstring for the formats).

    Raises ValueError saying what was wrong with the answer, never repeating it.
    """
    text = body.strip()
    if "json" in content_type.lower() or text.startswith(("{", "[", '"')):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("the answer is not valid JSON") from None
        candidates = _json_candidates(document)
    else:
        candidates = [text] if text and len(text.splitlines()) == 1 else []
    for candidate in candidates:
        if _is_http_url(candidate):
            return candidate.strip().rstrip("/")
    raise ValueError(
        'the answer names no http(s) URL (expected {"endpoints": [{"url": ...}]} or a URL)'
    )


def endpoint_discovery(
    settings: FetcherSettings,
    token_source: TokenSource | None = None,
    session: requests.Session | None = None,
) -> EndpointDiscovery:
    """The step that finds the pipeline: the forced URL when set, else the discovery service."""
    if settings.pipeline_endpoint:
        return ForcedEndpoint(settings.pipeline_endpoint)
    if settings.discover_pipeline_endpoint:
        return DiscoveryService(settings.discover_pipeline_endpoint, token_source, session)
    raise ConfigurationError(
        "TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT is empty and "
        "TRIGGERLINE_FETCHER_DISCOVER_PIPELINE_ENDPOINT is not set: set one of them "
        "(Campaign's forcedPipelineEndpoint or discoverPipelineEndpoint)"
    )


def resolve_endpoint(settings: FetcherSettings, token_source: TokenSource | None = None) -> str:
    """The pipeline's base URL: TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT when non-empty, else what
    the discovery service at TRIGGERLINE_FETCHER_DISCOVER_PIPELINE_ENDPOINT answers.

    `token_source` is called only for discovery (pass `TokenClient.token`). Raises
    ConfigurationError when neither setting is given, TransientFailure when discovery fails
    (one attempt: the caller retries or exits).
    """
    with requests.Session() as session:
        step = endpoint_discovery(settings, token_source, session)
        endpoint = step.pipeline_endpoint()
    if isinstance(step, DiscoveryService):
        log.info("pipeline endpoint %s, from %r", _shown(endpoint), step)
    return endpoint


def _json_candidates(document: Any) -> list[str]:
    if isinstance(document, str):
        return [document]
    entries = document.get("endpoints") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        return []
    found: list[str] = []
    for entry in entries:
        if isinstance(entry, dict):
            entry = entry.get("url")
        if isinstance(entry, str):
            found.append(entry)
    return found


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in text.strip()


def _bounded_body(response: requests.Response) -> str:
    data = b""
    for chunk in response.iter_content(chunk_size=8192):
        data += chunk
        if len(data) > MAX_ANSWER_BYTES:
            raise TransientFailure(
                f"endpoint discovery answered more than {MAX_ANSWER_BYTES} bytes"
            )
    return data.decode(response.encoding or "utf-8", errors="replace")


def _shown(url: str) -> str:
    """A URL fit for a message: any user:password@ part left out."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
