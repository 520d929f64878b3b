"""What stage 2 decides for a trigger or a release tick, as values its applier performs.

A `Decision` lists its actions in the order they take effect (emit a request, hold one, cancel
a held one, end with an outcome) and the profile's new state. A `Lookup` asks the applier to
fetch the profile and decide again: the rules never wait on the database themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.models import EmailRequest, OutcomeStatus
from services.processor.rules.state import Pending, ProfileState

# What the profile's state remembers of a handled messageId, besides outcome labels.
REQUESTED = "request"
HELD = "held"


def outcome_label(status: OutcomeStatus, reason: str | None) -> str:
    """`expired:stale_trigger`: how a decision is remembered, so a redelivery repeats it."""
    return f"{status.value}:{reason or ''}"


def parse_label(label: str) -> tuple[OutcomeStatus, str | None]:
    """The outcome a remembered label names; `ValueError` for a label that is no outcome."""
    status, _, reason = label.partition(":")
    return OutcomeStatus(status), reason or None


@dataclass(frozen=True)
class End:
    """One terminal outcome (of the trigger, or of a request it held earlier)."""

    status: OutcomeStatus
    message_id: str
    reason: str | None
    trigger_id: str | None = None
    campaign: str | None = None
    profile_id: str | None = None
    position: str = ""  # the triggers.raw position, kept in the outcome's detail
    detail: Mapping[str, str] | None = None
    unmatched: bool = False  # the record also goes to triggers.unmatched, to be re-driven

    @property
    def label(self) -> str:
        return outcome_label(self.status, self.reason)


@dataclass(frozen=True)
class Cancel:
    """A held request that a `cancel_on` trigger (`by`, its messageId) cancels."""

    pending: Pending
    by: str
    profile_id: str

    @property
    def end(self) -> End:
        pending = self.pending
        reason = f"cancelled_by:{self.by}"
        return End(
            OutcomeStatus.CANCELLED,
            pending.message_id,
            reason,
            pending.trigger_id,
            pending.campaign,
            self.profile_id,
        )


@dataclass(frozen=True)
class Emit:
    """Send the email request to its campaign's topic."""

    request: EmailRequest
    deferred: bool = False  # quiet hours moved its notBefore
    wait: bool = False  # only once the broker has it, before the state forgets a released hold


@dataclass(frozen=True)
class Hold:
    """The request waits in the profile's state (the decision's new state holds it)."""

    pending: Pending


Action = Emit | Hold | Cancel | End


def remembered_as(action: Action) -> str:
    """What the profile's state remembers of the trigger whose decision ends in `action`."""
    if isinstance(action, Emit):
        return REQUESTED
    if isinstance(action, Hold):
        return HELD
    return action.end.label if isinstance(action, Cancel) else action.label


@dataclass(frozen=True)
class Decision:
    """The actions, in order, and the profile's state to write (None: leave it as it is)."""

    actions: tuple[Action, ...] = ()
    state: ProfileState | None = None
    # (campaign, variable, why) of each variable that rendered its default instead
    fallbacks: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class Lookup:
    """Decide again with the profile and its suppression entry, fetched from the store."""

    profile_id: str
