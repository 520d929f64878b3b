"""The auth service's Prometheus metrics; none carries a secret, a token or a client credential."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TOKEN_AGE = Gauge("triggerline_auth_token_age_seconds", "Age of the token being served.")
TOKEN_REMAINING = Gauge(
    "triggerline_auth_token_remaining_seconds", "Seconds until the served token expires."
)
REFRESHES = Counter("triggerline_auth_refreshes_total", "Tokens obtained from IMS.")
FAILURES = Counter(
    "triggerline_auth_refresh_failures_total", "Failed IMS calls, by kind.", ["kind"]
)
SERVED = Counter("triggerline_auth_clients_served_total", "Tokens served, by client.", ["client"])
REJECTED = Counter(
    "triggerline_auth_clients_rejected_total", "Requests refused for a wrong or missing credential."
)
INVALIDATIONS = Counter(
    "triggerline_auth_invalidations_total",
    "Tokens reported rejected upstream, by client.",
    ["client"],
)
