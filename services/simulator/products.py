"""The demo shop's products, pages and searches that generated triggers talk about."""

from __future__ import annotations

from dataclasses import dataclass

SHOP = "https://shop.example"


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: str

    @property
    def url(self) -> str:
        return f"{SHOP}/product/{self.sku.lower()}"


PRODUCTS: tuple[Product, ...] = (
    Product("TRL-1001", "Trail running shoes", "89.90"),
    Product("TRL-1002", "Merino base layer", "59.00"),
    Product("TRL-1003", "Waterproof shell jacket", "179.00"),
    Product("TRL-1004", "Hydration vest 5 L", "74.50"),
    Product("TRL-1005", "Carbon trekking poles", "119.00"),
    Product("TRL-1006", "Headlamp 400 lm", "39.95"),
    Product("TRL-1007", "Compression socks", "19.90"),
    Product("TRL-1008", "Lightweight daypack 20 L", "64.00"),
    Product("TRL-1009", "GPS sports watch", "249.00"),
    Product("TRL-1010", "Insulated bottle 750 ml", "24.90"),
)

BROWSE_PAGES: tuple[str, ...] = (
    f"{SHOP}/",
    f"{SHOP}/category/running",
    f"{SHOP}/category/hiking",
    f"{SHOP}/category/accessories",
    f"{SHOP}/sale",
)

SEARCH_TERMS: tuple[str, ...] = (
    "trail shoes",
    "rain jacket",
    "headlamp",
    "merino",
    "hydration vest",
    "gps watch",
)

CART_URL = f"{SHOP}/cart"
CHECKOUT_URL = f"{SHOP}/checkout"
CONFIRMATION_URL = f"{SHOP}/checkout/confirmation"


def search_url(term: str) -> str:
    return f"{SHOP}/search?q={term.replace(' ', '+')}"
