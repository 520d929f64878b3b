"""What every rendered email must satisfy, whatever the trigger and profile held.

Pure judgements over what the mailer would send: the rendered parts and the finished message.
`triggerline templates check` applies them to every cell of the template matrix.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

# RFC 5322 2.1.1: no line of a message may exceed 998 characters (CRLF excluded).
MAX_LINE = 998
# The headers the message adds to those `OutgoingMessage.headers` lists.
MIME_HEADERS = frozenset({"mime-version", "content-type"})


def undeclared_names(
    free_names: Mapping[str, Collection[str]], known: Collection[str]
) -> list[str]:
    """One problem per name a template part reads that is neither a template name nor a
    declared variable: a typo StrictUndefined would otherwise only meet in production."""
    return [
        f"{part} reads {name!r}, which no variable declares"
        for part, names in sorted(free_names.items())
        for name in sorted(set(names) - set(known))
    ]


def subject_problems(subject: str) -> list[str]:
    """The Subject after whitespace folding: not empty, and within one header line."""
    if not subject.strip():
        return ["the subject is empty"]
    if len(subject) > MAX_LINE:
        return [f"the subject is {len(subject)} characters after folding (at most {MAX_LINE})"]
    return []


def header_problems(message: bytes, header_names: Iterable[str]) -> list[str]:
    """The message's header block: only the headers the mailer writes, each line within
    `MAX_LINE`. A value that smuggled a line break in would show up as an extra header."""
    head = message.split(b"\r\n\r\n", 1)[0].decode("ascii", errors="replace")
    expected = {name.lower() for name in header_names} | MIME_HEADERS
    problems = []
    for line in head.split("\r\n"):
        if len(line) > MAX_LINE:
            problems.append(f"a header line is {len(line)} characters (at most {MAX_LINE})")
        if line[:1] in (" ", "\t"):
            continue  # folded continuation of the header above
        name = line.split(":", 1)[0]
        if name.lower() not in expected:
            problems.append(f"unexpected header line {line[:80]!r}")
    return problems


def leaked(forbidden: Iterable[str], parts: Iterable[str]) -> list[str]:
    """Hostile input that reached the email: it must have been refused or cut off."""
    texts = list(parts)
    return [
        f"hostile input {marker!r} reached the email"
        for marker in dict.fromkeys(forbidden)
        if any(marker in text for text in texts)
    ]
