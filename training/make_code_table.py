"""``workers/codes.json``: the ISO codes of languages, countries and currencies by their
English names, for the worker's ``code`` rule (:mod:`workers.codes`).

``python -m training.make_code_table [OUT]`` writes it from ``pycountry`` (the ``test``
extra; its data is Debian's iso-codes): ISO 639-1 languages, ISO 3166-1 countries (alpha-2
and alpha-3) and ISO 4217 currencies. A name is a record's ``name``, ``common_name`` and
``official_name`` (ISO 3166), without a parenthesised tail ("Malay (macrolanguage)") and, for
"Korea, Republic of" and the like, the part before the comma; plus the everyday names in
``ALIASES``. A name two records share ("Congo") is left out. Currency signs that stand for
one currency ("€", not "$" or "¥") are in ``SYMBOLS``. The worker reads only the JSON, so
it needs no ``pycountry`` and holds about 40 KB of names.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "workers" / "codes.json"

# Everyday names ISO does not list as a name of the record.
ALIASES: dict[str, dict[str, str]] = {
    "language": {"farsi": "fa", "mandarin": "zh"},
    "country": {
        "usa": "US",
        "u.s.": "US",
        "u.s.a.": "US",
        "america": "US",
        "uk": "GB",
        "u.k.": "GB",
        "britain": "GB",
        "great britain": "GB",
        "russia": "RU",
        "turkey": "TR",
        "czech republic": "CZ",
        "holland": "NL",
        "the netherlands": "NL",
    },
    "currency": {
        "dollar": "USD",
        "dollars": "USD",
        "us dollars": "USD",
        "euros": "EUR",
        "pounds": "GBP",
        "quid": "GBP",
        "bucks": "USD",
        "pounds sterling": "GBP",
        "british pound": "GBP",
        "british pounds": "GBP",
        "japanese yen": "JPY",
        "chinese yuan": "CNY",
        "yuan": "CNY",
        "renminbi": "CNY",
    },
}


# Signs of one currency each; "$" (US, Canadian, Australian dollars, pesos) and "¥" (yen,
# yuan) name none.
SYMBOLS: dict[str, dict[str, str]] = {
    "currency": {
        "€": "EUR",
        "£": "GBP",
        "₹": "INR",
        "₩": "KRW",
        "₽": "RUB",
        "₺": "TRY",
        "₪": "ILS",
        "₱": "PHP",
        "₫": "VND",
        "฿": "THB",
        "₦": "NGN",
        "₴": "UAH",
    }
}


def _names(record: Any, fields: tuple[str, ...]) -> set[str]:
    names = set()
    for field in fields:
        value = getattr(record, field, None)
        if not value:
            continue
        value = re.sub(r"\s*\(.*\)$", "", value)
        names.add(value.casefold())
        if ", " in value:
            names.add(value.split(", ")[0].casefold())
    return names


def _unique(pairs: list[tuple[str, str]]) -> dict[str, str]:
    codes: defaultdict[str, set[str]] = defaultdict(set)
    for name, code in pairs:
        codes[name].add(code)
    return {name: found.pop() for name, found in sorted(codes.items()) if len(found) == 1}


def build() -> dict[str, Any]:
    import pycountry

    languages = [
        (name, language.alpha_2)
        for language in pycountry.languages
        if hasattr(language, "alpha_2")
        for name in _names(language, ("name", "common_name"))
    ]
    countries = [
        (name, country.alpha_2)
        for country in pycountry.countries
        for name in _names(country, ("name", "common_name", "official_name"))
    ]
    currencies = [
        (name, currency.alpha_3)
        for currency in pycountry.currencies
        for name in _names(currency, ("name",))
    ]
    tables = {"language": languages, "country": countries, "currency": currencies}
    return {
        "about": __doc__.split("\n\n")[0].replace("\n", " ") + " Made by "
        "training/make_code_table.py from pycountry " + pycountry_version() + ".",
        "names": {
            kind: _unique(pairs + list(ALIASES[kind].items())) for kind, pairs in tables.items()
        },
        "symbols": SYMBOLS,
        "codes": {
            "language": sorted({code for _, code in languages}),
            "country": sorted({code for _, code in countries}),
            "country_alpha_3": {c.alpha_2: c.alpha_3 for c in pycountry.countries},
            "currency": sorted({code for _, code in currencies}),
        },
    }


def pycountry_version() -> str:
    from importlib.metadata import version

    return version("pycountry")


def write_table(table: Any, argv: list[str] | None, default: Path) -> int:
    """Write a worker's table as JSON, one entry a line, to ``argv[0]`` or ``default``."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else default
    out.write_text(json.dumps(table, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(out)
    return 0


def main(argv: list[str] | None = None) -> int:
    return write_table(build(), argv, OUT)


if __name__ == "__main__":
    raise SystemExit(main())
