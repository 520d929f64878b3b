"""Campaign's serverConf.xml: `<pipelined>` attributes mapped, refused or noted; env wins."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.errors import ConfigurationError
from services.common.settings import env_names, load
from services.fetcher.pipelined_conf import MAPPED, read_pipelined
from services.fetcher.server_conf import apply_server_conf
from services.fetcher.settings import FetcherSettings

# Campaign's own defaults for every <pipelined> attribute, as its shipped serverConf.xml writes
# them, with the IMS authentication Adobe's migration guide asks for and a consumer.
ADOBE_DEFAULTS = {
    "args": "",
    "appName": "",
    "authGatewayEndpoint": "https://api.omniture.com",
    "authPrivateKey": "",
    "authType": "imsJwtToken",
    "autoStart": "true",
    "consumer": "customer_prod",
    "disableAuth": "2",
    "discoverPipelineEndpoint": "https://producer-pipeline-pnw.adobe.net",
    "dumpStatePeriodSec": "0",
    "forcedPipelineEndpoint": "",
    "initScript": "",
    "maxProcessMemoryAlertMb": "1800",
    "maxProcessMemoryWarningMb": "1600",
    "monitorServerPort": "7781",
    "pointerFlushMessageCount": "1000",
    "pointerFlushPeriodSec": "5",
    "processRestartTime": "06:00:00",
    "processingJSThreads": "4",
    "processingThreads": "4",
    "retryPeriodSec": "30",
    "retryValiditySec": "300",
    "runLevel": "10",
}

SECRET_KEY = "@qQf146pexBksGvo0esVIDO-secret-key-material"


def server_conf(attributes: dict[str, str], *, drop: tuple[str, ...] = ()) -> str:
    """A serverConf.xml with other elements, a comment and namespaces around <pipelined>."""
    written = " ".join(
        f'{name}="{value}"' for name, value in attributes.items() if name not in drop
    )
    return f"""<?xml version='1.0'?>
<serverconf xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <shared>
    <dataStore hosts="*" lang="en_GB">
      <dataSource name="default"><dbcnx login="neolane" server="db.internal"/></dataSource>
    </dataStore>
  </shared>
  <web><redirection IMSOrgId="C5E7154A5A1B2C3D4E5F98A4@AdobeOrg"/></web>
  <!-- Experience Cloud triggers -->
  <pipelined {written}/>
  <mta autoStart="true" statServerAddress="localhost"/>
</serverconf>
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TRIGGERLINE_FETCHER_* variable of the machine leaks into these tests."""
    for name in env_names(FetcherSettings):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="services.fetcher.server_conf")
    yield caplog


def applied(tmp_path: Path, text: str, **explicit: Any) -> FetcherSettings:
    path = tmp_path / "serverConf.xml"
    path.write_text(text, encoding="utf-8")
    return apply_server_conf(FetcherSettings(server_conf=str(path), **explicit))


def test_no_file_named_returns_the_same_settings() -> None:
    settings = FetcherSettings()
    assert apply_server_conf(settings) is settings


def test_adobe_defaults_give_adobe_behaviour(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    settings = applied(tmp_path, server_conf(ADOBE_DEFAULTS))
    assert settings.consumer == "customer_prod"
    # No forced endpoint: Campaign asks the discovery service, and so do we.
    assert settings.pipeline_endpoint == ""
    assert settings.discover_pipeline_endpoint == "https://producer-pipeline-pnw.adobe.net"
    assert settings.pointer_flush_message_count == 1000
    assert settings.pointer_flush_period_sec == 5.0
    assert settings.processing_threads == 4
    assert settings.retry_period_sec == 30.0
    assert settings.retry_validity_sec == 300.0
    assert settings.monitor_server_port == 7781
    assert settings.dump_state_period_sec == 0
    text = logs.text
    assert (
        "serverConf.xml: pointerFlushPeriodSec=5 -> TRIGGERLINE_FETCHER_POINTER_FLUSH_PERIOD_SEC"
        in text
    )
    assert "serverConf.xml: consumer=customer_prod -> TRIGGERLINE_FETCHER_CONSUMER" in text
    for name in (
        "autoStart",
        "runLevel",
        "processRestartTime",
        "maxProcessMemoryWarningMb",
        "maxProcessMemoryAlertMb",
        "processingJSThreads",
        "args",
        "appName",
        "authPrivateKey",
        "authGatewayEndpoint",
        "disableAuth",
    ):
        assert f"serverConf.xml: {name} not used:" in text, name
    assert "authType=imsJwtToken: the auth service" in text
    # One notice per attribute: every attribute of the element is accounted for in the log.
    for name in ADOBE_DEFAULTS:
        assert f"serverConf.xml: {name}" in text, name


NON_DEFAULT = {
    "consumer": ("customer_staging", "customer_staging"),
    "forcedPipelineEndpoint": ("https://pipeline.example.test", "https://pipeline.example.test"),
    "discoverPipelineEndpoint": ("https://discover.example.test", "https://discover.example.test"),
    "pointerFlushMessageCount": ("250", 250),
    "pointerFlushPeriodSec": ("12", 12.0),
    "processingThreads": ("9", 9),
    "retryPeriodSec": ("45", 45.0),
    "retryValiditySec": ("900", 900.0),
    "monitorServerPort": ("7799", 7799),
    "dumpStatePeriodSec": ("60", 60.0),
}


def test_every_mapped_attribute_is_tested() -> None:
    assert set(NON_DEFAULT) == set(MAPPED)


@pytest.mark.parametrize("attribute", sorted(NON_DEFAULT))
def test_each_mapped_attribute_reaches_its_setting(
    tmp_path: Path, logs: pytest.LogCaptureFixture, attribute: str
) -> None:
    written, expected = NON_DEFAULT[attribute]
    attributes = {**ADOBE_DEFAULTS, "forcedPipelineEndpoint": "https://forced.example.test"}
    attributes[attribute] = written
    settings = applied(tmp_path, server_conf(attributes))
    field = MAPPED[attribute]
    assert getattr(settings, field) == expected
    assert f"serverConf.xml: {attribute}={written} -> TRIGGERLINE_FETCHER_{field.upper()}" in (
        logs.text
    )


def test_an_environment_variable_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "serverConf.xml"
    path.write_text(server_conf({**ADOBE_DEFAULTS, "pointerFlushPeriodSec": "12"}))
    monkeypatch.setenv("TRIGGERLINE_FETCHER_SERVER_CONF", str(path))
    monkeypatch.setenv("TRIGGERLINE_FETCHER_POINTER_FLUSH_PERIOD_SEC", "7")
    monkeypatch.setenv("TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT", "http://127.0.0.1:7790")
    settings = apply_server_conf(load(FetcherSettings))
    assert settings.pointer_flush_period_sec == 7.0
    assert settings.pipeline_endpoint == "http://127.0.0.1:7790"
    assert settings.consumer == "customer_prod"  # the file still gives what the env does not
    assert settings.server_conf == str(path)
    assert (
        "pointerFlushPeriodSec=12 not applied: TRIGGERLINE_FETCHER_POINTER_FLUSH_PERIOD_SEC is "
        "set in the environment, which wins" in logs.text
    )
    assert "TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT is set in the environment" in logs.text


def test_a_forced_endpoint_wins_over_discovery(tmp_path: Path) -> None:
    attributes = {**ADOBE_DEFAULTS, "forcedPipelineEndpoint": "https://forced.example.test"}
    settings = applied(tmp_path, server_conf(attributes))
    assert settings.pipeline_endpoint == "https://forced.example.test"


def test_without_any_endpoint_attribute_ours_is_kept(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    text = server_conf(ADOBE_DEFAULTS, drop=("forcedPipelineEndpoint", "discoverPipelineEndpoint"))
    settings = applied(tmp_path, text, pipeline_endpoint="http://127.0.0.1:7790")
    assert settings.pipeline_endpoint == "http://127.0.0.1:7790"
    assert "neither forcedPipelineEndpoint nor discoverPipelineEndpoint is set" in logs.text


def test_namespaced_pipelined_is_found() -> None:
    text = (
        '<c:serverconf xmlns:c="urn:campaign"><c:shared/>'
        '<c:pipelined c:extra="x" processingThreads="6" authType="imsJwtToken"/></c:serverconf>'
    )
    conf = read_pipelined(text)
    assert conf.values() == {"processing_threads": "6"}
    assert any("namespaced attribute {urn:campaign}extra ignored" in n for n in conf.notices)


def test_ims_mode_ignores_a_leftover_key_without_repeating_it(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    attributes = {**ADOBE_DEFAULTS, "authPrivateKey": SECRET_KEY, "appName": "legacyApp"}
    applied(tmp_path, server_conf(attributes))
    assert "authPrivateKey not used: legacy authentication only" in logs.text
    assert "appName not used" in logs.text
    assert SECRET_KEY not in logs.text


UNSUPPORTED = {
    # attribute changes -> words the error must contain
    "legacy authPrivateKey": (
        {"authType": "", "authPrivateKey": SECRET_KEY},
        ["authPrivateKey", "legacy gateway", "TRIGGERLINE_AUTH_MODE=oauth"],
    ),
    "legacy appName": (
        {"authType": "", "appName": "legacyApp"},
        ["appName", "legacy gateway", "TRIGGERLINE_AUTH_CLIENT_ID"],
    ),
    "legacy authGatewayEndpoint": (
        {"authType": "", "authGatewayEndpoint": "https://gateway.example.test"},
        ["authGatewayEndpoint", "legacy gateway", "TRIGGERLINE_AUTH_CLIENT_SECRET_FILE"],
    ),
    "authType other than IMS": (
        {"authType": "gatewayToken"},
        ["authType='gatewayToken'", "imsJwtToken", "TRIGGERLINE_AUTH_MODE"],
    ),
    "disableAuth true": (
        {"disableAuth": "true"},
        ["disableAuth", "TRIGGERLINE_AUTH_MODE=none", "TRIGGERLINE_AUTH_ALLOW_NONE=true"],
    ),
    "disableAuth not a boolean": ({"disableAuth": "sometimes"}, ["disableAuth is not a boolean"]),
    "initScript": ({"initScript": "cus:start.js"}, ["initScript", "TRIGGERLINE_PIPELINE_CONFIG"]),
    "misspelt attribute": (
        {"pointerFlushPeriodSecs": "5"},
        ["pointerFlushPeriodSecs is not an attribute Campaign documents", "spelling"],
    ),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_each_unsupported_attribute_is_refused(
    tmp_path: Path, logs: pytest.LogCaptureFixture, case: str
) -> None:
    changes, words = UNSUPPORTED[case]
    path = tmp_path / "serverConf.xml"
    path.write_text(server_conf({**ADOBE_DEFAULTS, **changes}))
    with pytest.raises(ConfigurationError) as caught:
        apply_server_conf(FetcherSettings(server_conf=str(path)))
    message = str(caught.value)
    assert str(path) in message
    for word in words:
        assert word in message
    assert SECRET_KEY not in message
    assert SECRET_KEY not in logs.text


def test_every_problem_is_reported_at_once() -> None:
    text = server_conf({**ADOBE_DEFAULTS, "initScript": "cus:start.js", "disableAuth": "1"})
    with pytest.raises(ConfigurationError, match=r"disableAuth is true.*initScript names"):
        read_pipelined(text)


def problems(error: ConfigurationError) -> str:
    return str(error).split(": ")[-1]


def test_a_bad_value_gives_the_error_a_bad_variable_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "serverConf.xml"
    path.write_text(server_conf({**ADOBE_DEFAULTS, "pointerFlushPeriodSec": "abc"}))
    with pytest.raises(ConfigurationError) as from_file:
        apply_server_conf(FetcherSettings(server_conf=str(path)))
    monkeypatch.setenv("TRIGGERLINE_FETCHER_POINTER_FLUSH_PERIOD_SEC", "abc")
    with pytest.raises(ConfigurationError) as from_env:
        load(FetcherSettings)
    assert "TRIGGERLINE_FETCHER_POINTER_FLUSH_PERIOD_SEC" in str(from_env.value)
    assert problems(from_file.value) == problems(from_env.value)
    assert f"pointerFlushPeriodSec in {path}" in str(from_file.value)
    assert "TRIGGERLINE_FETCHER_POINTER_FLUSH_PERIOD_SEC" in str(from_file.value)


@pytest.mark.parametrize(
    ("attribute", "value", "words"),
    [
        ("pointerFlushPeriodSec", "60", "less than or equal to 50"),
        ("monitorServerPort", "70000", "less than or equal to 65535"),
        ("processingThreads", "0", "greater than or equal to 1"),
        ("retryValiditySec", "-1", "greater than 0"),
        ("pointerFlushMessageCount", "many", "valid integer"),
    ],
)
def test_out_of_range_values_are_refused(
    tmp_path: Path, attribute: str, value: str, words: str
) -> None:
    path = tmp_path / "serverConf.xml"
    path.write_text(server_conf({**ADOBE_DEFAULTS, attribute: value}))
    with pytest.raises(ConfigurationError) as caught:
        apply_server_conf(FetcherSettings(server_conf=str(path)))
    message = str(caught.value)
    assert f"{attribute} in {path} (-> TRIGGERLINE_FETCHER_{MAPPED[attribute].upper()})" in message
    assert words in message


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE serverconf [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
]>
<serverconf><pipelined consumer="&lol2;"/></serverconf>
"""


@pytest.mark.parametrize(
    "text",
    [
        BILLION_LAUGHS,
        '<!DOCTYPE serverconf SYSTEM "file:///etc/passwd"><serverconf><pipelined/></serverconf>',
        '<serverconf><!ENTITY x "y"><pipelined/></serverconf>',
        "<!doctype serverconf><serverconf><pipelined/></serverconf>",
    ],
)
def test_dtds_and_entities_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "serverConf.xml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match="declares a DTD or entities") as caught:
        apply_server_conf(FetcherSettings(server_conf=str(path)))
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("<serverconf><pipelined consumer='x'></serverconf>", "not well-formed XML"),
        ("", "not well-formed XML"),
        ("<serverconf><shared/><mta/></serverconf>", "no <pipelined> element"),
        ("<serverconf><pipelined/><x><pipelined/></x></serverconf>", "2 <pipelined> elements"),
    ],
)
def test_unusable_documents_name_the_file(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "serverConf.xml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=words) as caught:
        apply_server_conf(FetcherSettings(server_conf=str(path)))
    assert str(path) in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "serverConf.xml"
    with pytest.raises(ConfigurationError) as caught:
        apply_server_conf(FetcherSettings(server_conf=str(path)))
    message = str(caught.value)
    assert "TRIGGERLINE_FETCHER_SERVER_CONF" in message
    assert str(path) in message
    assert "No such file" in message
