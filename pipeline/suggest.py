"""'Did you mean E004?': the nearest existing ID to one that is not known.

HR types IDs by hand; the usual slips are one character wrong, missing or doubled, or two
neighbours swapped (E040 for E004). An index of every known ID's one-character deletions finds
the candidates without comparing against all of them (a roster may hold 100,000 IDs).
"""

from __future__ import annotations

from collections.abc import Iterable


def _deletions(text: str) -> set[str]:
    return {text[:i] + text[i + 1:] for i in range(len(text))}


def edit_distance(a: str, b: str) -> int:
    """Damerau–Levenshtein (optimal string alignment): a swap of neighbours counts as one edit."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


class IdIndex:
    """Known IDs, indexed for near-miss lookups (built once per column of references)."""

    def __init__(self, known: Iterable[str]):
        self.known = {k for k in known if isinstance(k, str) and k}
        self.by_variant: dict[str, set[str]] = {}
        for key in self.known:
            for variant in _deletions(key) | {key}:
                self.by_variant.setdefault(variant.casefold(), set()).add(key)

    def nearest(self, value: str, limit: int = 2) -> list[str]:
        """The known IDs one edit from `value` (case ignored), at most `limit`, closest first."""
        if not isinstance(value, str) or not value or len(value) < 2:
            return []
        candidates: set[str] = set()
        for variant in _deletions(value) | {value}:
            candidates |= self.by_variant.get(variant.casefold(), set())
        scored = sorted((edit_distance(value.casefold(), c.casefold()), c) for c in candidates if c != value)
        return [c for distance, c in scored if distance <= 1][:limit]
