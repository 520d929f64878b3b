"""Consumer group ids the operator commands use: the services' configured ones, and their own.

Groups of the operator commands carry TRIGGERLINE_TOPICS_PREFIX, as topics do, so two
environments sharing a cluster never share a re-drive position.
"""

from __future__ import annotations

from services.common.settings import load
from services.common.topics import topics
from services.mailer.settings import MailerSettings
from services.processor.settings import ProcessorSettings


def redrive_group() -> str:
    """The group `triggerline replay redrive` derives its per-filter progress groups from."""
    return f"{topics().prefix}triggerline-redrive"


def status_group() -> str:
    """The group id of the operator commands' readers (status, outcomes, replay plans)."""
    return f"{topics().prefix}triggerline-status"


def service_groups() -> list[str]:
    """The processor's and the mailer's groups as this environment configures them."""
    return [load(ProcessorSettings).app_id, load(MailerSettings).group_id]
