"""The triggers and profiles `triggerline templates check` renders every campaign with.

Generated from a campaign's own declarations, so a new variable is covered without editing the
check: every subset of the optional data (products and each variable present or absent), then
the extremes (a 20,000-product session, hostile links and text, overlong and right-to-left
values), against profiles with no name, a CR/LF in the name, a long, right-to-left or emoji
name, in every supported locale. Hostile values carry `MARK` where only an injection would put
it; the check fails if it reaches the message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

from services.common.enrichments import Enrichments
from services.common.personalisation_config import Variable

MARK = "tl-injected"
HUGE_SESSION = 20_000
# Beyond this many optional items the power set is too big to render; then each item is left
# out alone, with everything and nothing present besides.
MAX_SUBSET_ITEMS = 6
PRODUCTS = "products"


@dataclass(frozen=True)
class TriggerVariant:
    """One generated trigger: its enrichments, and text that must never reach the message."""

    name: str
    enrichments: Enrichments
    forbidden: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ProfileVariant:
    """One generated profile: the CRM's first name and locale as they may really be."""

    name: str
    first_name: str | None
    locale: str | None
    forbidden: tuple[str, ...] = field(default=())


def sample_host(link_hosts: Sequence[str]) -> str:
    """A host the campaign allows (`www.` under a `*.` entry), or a stand-in when none is."""
    for entry in link_hosts:
        return f"www.{entry[2:]}" if entry.startswith("*.") else entry
    return "shop.example"


def _enrichments(
    values: Mapping[str, str], declarations: Mapping[str, Variable], products: Sequence[str]
) -> Enrichments:
    """Each present variable's value in its first source dimension, plus the products."""
    hits = {
        declarations[name].sources[0].strip(): (value,)
        for name, value in values.items()
        if value  # an empty hit is no hit, as in the parsed enrichments
    }
    return Enrichments(hits=hits, products_object=tuple(products))


def _subsets(items: Sequence[str]) -> Iterator[frozenset[str]]:
    """Which optional items are present: all subsets, or a representative few when many."""
    if len(items) <= MAX_SUBSET_ITEMS:
        for size in range(len(items), -1, -1):
            for chosen in combinations(items, size):
                yield frozenset(chosen)
        return
    yield frozenset(items)
    for left_out in items:
        yield frozenset(items) - {left_out}
    yield frozenset()


def _described(present: frozenset[str], items: Sequence[str]) -> str:
    missing = [item for item in items if item not in present]
    if not missing:
        return "all data"
    if len(missing) == len(items):
        return "no data"
    return "without " + ", ".join(missing)


def trigger_variants(
    declarations: Mapping[str, Variable], link_hosts: Sequence[str], has_products: bool
) -> list[TriggerVariant]:
    """The trigger side of the matrix for one campaign.

    A required variable is present in the subsets (a trigger without it is skipped, not
    rendered), but is still made hostile in the extremes: a refused value must skip too.
    """
    host = sample_host(link_hosts)
    normal = {
        name: f"https://{host}/cart?item=42&utm_source=email" if v.type == "url" else "boots"
        for name, v in declarations.items()
    }
    products = ["Blue Kettle", "Tea Cups"] if has_products else []
    optional = [name for name, v in declarations.items() if not v.required]
    items = ([PRODUCTS] if has_products else []) + optional
    variants = []
    for present in _subsets(items):
        values = {
            name: value
            for name, value in normal.items()
            if name in present or declarations[name].required
        }
        chosen = products if PRODUCTS in present else []
        variants.append(
            TriggerVariant(_described(present, items), _enrichments(values, declarations, chosen))
        )

    def extreme(
        name: str, url: str, text: str, names: Iterable[str], forbidden: tuple[str, ...] = ()
    ) -> TriggerVariant:
        values = {n: url if v.type == "url" else text for n, v in declarations.items()}
        chosen = list(names) if has_products else []
        return TriggerVariant(name, _enrichments(values, declarations, chosen), forbidden)

    link = f"https://{host}/cart?item=42"
    variants += [
        extreme(
            f"{HUGE_SESSION} products",
            link,
            "boots",
            (f"Product {i}" for i in range(HUGE_SESSION)),
        ),
        extreme(
            "javascript: link",
            f"javascript:alert('{MARK}')",
            "boots",
            products,
            ("javascript:", MARK),
        ),
        extreme(
            "link to a foreign host",
            f"https://evil.test/{MARK}?next=1",
            "boots",
            products,
            ("evil.test", MARK),
        ),
        extreme(
            "CR/LF and a fake header in text",
            f"{link}\r\nBcc: {MARK}@evil.test",
            f"boots\r\nBcc: {MARK}@evil.test",
            [f"Kettle\r\nBcc: {MARK}@evil.test", *products],
            (MARK,),
        ),
        extreme(
            "overlong values",
            f"https://{host}/{'a' * 5000}",
            "x" * 10_000,
            [f"{'p' * 5000} {i}" for i in range(50)],
        ),
        extreme(
            "right-to-left and emoji",
            f"https://{host}/%D7%A2%D7%92%D7%9C%D7%94?q=%F0%9F%A5%BE",
            "מגפיים 🥾 أحذية",
            ["כוס תה ☕", "🫖 Kettle", "شاي"],
        ),
        extreme("bidi override in text", link, "\u202eboots", products, ("\u202e",)),
    ]
    return variants


def profile_variants(locales: Sequence[str]) -> list[ProfileVariant]:
    """The profile side of the matrix: each first-name case in each locale (and none)."""
    names: list[tuple[str, str | None, tuple[str, ...]]] = [
        ("plain name", "Ann", ()),
        ("no name", None, ()),
        ("empty name", "", ()),
        ("CR/LF in name", f"Ann\r\nBcc: {MARK}@evil.test", (MARK,)),
        ("long name", "Ann " * 1500, ()),
        ("right-to-left name", "דוד", ()),
        ("arabic name", "محمد", ()),
        ("emoji name", "Zoë 👩🏽‍💻", ()),
        ("bidi override in name", "\u202eAnn", ("\u202e",)),
    ]
    return [
        ProfileVariant(f"{label}, locale {locale or 'none'}", first_name, locale, forbidden)
        for locale in (*locales, None)
        for label, first_name, forbidden in names
    ]
