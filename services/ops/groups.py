"""Consumer group ids the operator commands use: the services' configured ones, and their own.

Groups of the operator commands carry TRIGGERLINE_TOPICS_PREFIX, as topics do, so two
environments sharing a cluster never share a re-drive position.
"""

from __future__ import annotations

from services.common.settings import load
from services.common.topics import TOPICS
from services.mailer.settings import MailerSettings
from services.processor.settings import ProcessorSettings

REDRIVE_GROUP = f"{TOPICS.prefix}triggerline-redrive"
STATUS_GROUP = f"{TOPICS.prefix}triggerline-status"


def service_groups() -> list[str]:
    """The processor's and the mailer's groups as this environment configures them."""
    return [load(ProcessorSettings).app_id, load(MailerSettings).group_id]
