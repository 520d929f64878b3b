"""The unsubscribe pages: small, accessible HTML with no scripts, in the reader's language.

The page's form has no `action`, so it posts to the very URL it was served from (token and
all), behind whatever path prefix the ingress adds. The only style is inline and allowed by its
hash in the Content-Security-Policy, which forbids everything else: scripts, frames, images,
other origins as form targets.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlencode

from jinja2 import Environment
from markupsafe import Markup

from services.feedback.catalogue import CATALOGUE, LANGUAGE_NAMES, LANGUAGES
from services.feedback.rules.unsubscribe import PageKind

_STYLE = """
:root { color-scheme: light dark; font-family: system-ui, sans-serif; line-height: 1.5; }
body { margin: 0; padding: 2rem 1rem; background: Canvas; color: CanvasText; }
main { max-width: 34rem; margin: 0 auto; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 0 0 1rem; }
p { font-size: 1.1rem; margin: 0 0 1.5rem; }
button { font: inherit; font-size: 1.1rem; font-weight: 600; padding: 0.75rem 1.5rem;
  min-height: 2.75rem; border: 2px solid #0b3d91; border-radius: 0.4rem; background: #0b3d91;
  color: #fff; cursor: pointer; }
button:hover { background: #072a66; }
button:focus-visible, a:focus-visible { outline: 3px solid #d97706; outline-offset: 3px; }
nav { margin-top: 2.5rem; font-size: 0.95rem; }
nav ul { list-style: none; padding: 0; margin: 0; display: flex; gap: 1rem; }
nav a { color: LinkText; }
"""

_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode("utf-8")).digest()).decode("ascii")

CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

# Sent with every page: the token is in the URL, so it must not leak through a Referer header
# or a shared cache, and the page must not be framed (clickjacking the button).
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

_TEMPLATE = """<!doctype html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{{ heading }} | {{ title }}</title>
<style>{{ style }}</style>
</head>
<body>
<main>
<h1>{{ heading }}</h1>
<p>{{ body }}</p>
{%- if button %}
<form method="post">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<input type="hidden" name="via" value="page">
<button type="submit">{{ button }}</button>
</form>
{%- endif %}
{%- if others %}
<nav aria-label="{{ languages_label }}">
<ul>
{%- for code, name, href in others %}
<li><a href="{{ href }}" hreflang="{{ code }}" lang="{{ code }}">{{ name }}</a></li>
{%- endfor %}
</ul>
</nav>
{%- endif %}
</main>
</body>
</html>
"""

_ENVIRONMENT = Environment(autoescape=True, keep_trailing_newline=True)
_COMPILED = _ENVIRONMENT.from_string(_TEMPLATE)


def render_page(kind: PageKind, lang: str, address: str | None, token: str | None) -> str:
    """The page of `kind` in `lang`, naming the (masked) `address` where the text does.

    With a `token`, the page links to itself in the other languages.
    """
    strings = CATALOGUE[lang]
    others = []
    if token is not None:
        others = [
            (code, LANGUAGE_NAMES[code], "?" + urlencode({"token": token, "lang": code}))
            for code in LANGUAGES
            if code != lang
        ]
    return _COMPILED.render(
        lang=lang,
        title=strings["site.title"],
        heading=strings[f"{kind.value}.heading"],
        body=strings[f"{kind.value}.body"].format(address=address or "…"),
        button=strings.get(f"{kind.value}.button"),
        languages_label=strings["site.languages"],
        others=others,
        style=Markup(_STYLE),  # noqa: S704 -- a constant of ours, verbatim: its hash is in the CSP
    )
