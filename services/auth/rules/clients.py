"""Which internal services may ask for a token: names and credentials, compared in constant time."""

from __future__ import annotations

import hmac


def parse_clients(text: str) -> dict[str, str]:
    """`fetcher:<secret>,ops:<secret>` (commas or new lines) -> {name: secret}.

    Errors name the item's position, never its content: the content is a secret.
    """
    clients: dict[str, str] = {}
    items = [item.strip() for item in text.replace("\n", ",").split(",")]
    for position, item in enumerate((i for i in items if i and not i.startswith("#")), 1):
        name, sep, secret = item.partition(":")
        name, secret = name.strip(), secret.strip()
        if not sep or not name or not secret:
            raise ValueError(f"client entry {position} is not <name>:<secret>")
        if name in clients:
            raise ValueError(f"client {name!r} is listed twice")
        clients[name] = secret
    return clients


def client_allowed(clients: dict[str, str], name: str, presented: str) -> bool:
    """True when `presented` is `name`'s credential; the same time is spent either way."""
    expected = clients.get(name)
    # Compare against something even for unknown names, so timing does not reveal client names.
    ok = hmac.compare_digest(presented.encode(), (expected or "\0").encode())
    return ok and expected is not None
