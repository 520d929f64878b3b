"""The profile a decision addresses, and what the profile store knows of it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """What the processor needs of a profile to address an email request."""

    profile_id: str
    email: str
    first_name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    email_consent: bool = True


@dataclass(frozen=True)
class ProfileView:
    """What the profile store says of one profile, as a decision reads it.

    `profile` is None when the profile is gone (deleted since stage 1 resolved it);
    `suppressed_as` is why its address is on the suppression list, None when it is not.
    """

    profile: Profile | None
    suppressed_as: str | None = None
