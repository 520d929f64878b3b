"""The MX's certificate as rendered: the feedback pods mount Secret `triggerline-feedback-smtp-tls`
(optional, so they start without it) and point the listener's STARTTLS settings at its files;
`config check --production` warns, and never refuses, when those settings are unset."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from services.common.settings import load
from services.feedback.settings import FeedbackSettings
from services.ops import configuration
from services.ops.rules.production import REFERENCED, production_warnings
from tests.unit.deploy.rendering import OVERLAY_NAMES, environment, pods, render
from tests.unit.deploy.test_production import cluster_environment, production_environment

SECRET = "triggerline-feedback-smtp-tls"
CERT = "TRIGGERLINE_FEEDBACK_SMTP_TLS_CERT"
KEY = "TRIGGERLINE_FEEDBACK_SMTP_TLS_KEY"
OPTIONAL = "TRIGGERLINE_FEEDBACK_SMTP_TLS_FILES_OPTIONAL"


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_the_feedback_pods_point_the_listener_at_the_mounted_certificate(overlay: str) -> None:
    objects = render(overlay)
    pod = next(p for p in pods(objects) if p.name == "triggerline-feedback")
    (container,) = pod.spec["containers"]
    (volume,) = [v for v in pod.spec["volumes"] if v.get("secret", {}).get("secretName") == SECRET]
    assert volume["secret"]["optional"] is True, "the pod must start without the certificate"
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    mounted = {
        item["key"]: str(PurePosixPath(mount["mountPath"]) / item["path"])
        for item in volume["secret"]["items"]
    }
    env = environment(objects, container, REFERENCED)
    # the keys of a kubernetes.io/tls Secret, as cert-manager and `create secret tls` write them
    assert (env[CERT], env[KEY]) == (mounted["tls.crt"], mounted["tls.key"])
    settings = load(
        FeedbackSettings,
        {
            "smtp_tls_cert": env[CERT],
            "smtp_tls_key": env[KEY],
            "smtp_tls_files_optional": env[OPTIONAL],
        },
    )
    assert settings.smtp_tls_files_optional is True, "an absent Secret must not stop the pod"


def test_the_production_overlay_draws_no_warning() -> None:
    assert production_warnings(cluster_environment(render("prod"))) == []


@pytest.mark.parametrize("service", [None, "feedback"])
def test_config_check_production_warns_but_accepts_an_mx_without_tls(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    service: str | None,
) -> None:
    production_environment(tmp_path, monkeypatch)
    args = ["check", "--production"] + (["--service", service] if service else [])
    assert configuration.main(args) == 0
    assert CERT not in capsys.readouterr().err

    monkeypatch.delenv(CERT)
    monkeypatch.delenv(KEY)
    assert configuration.main(args) == 0, "a warning, not a refusal"
    warnings = [line for line in capsys.readouterr().err.splitlines() if CERT in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ")


def test_config_check_production_scoped_to_another_service_says_nothing_of_the_mx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    production_environment(tmp_path, monkeypatch)
    monkeypatch.delenv(CERT)
    monkeypatch.delenv(KEY)
    assert configuration.main(["check", "--production", "--service", "mailer"]) == 0
    assert CERT not in capsys.readouterr().err
