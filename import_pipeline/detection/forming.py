"""Stars from pairs (contract section 8): every duplicate matches its canonical itself, and no
two members of one star are kept apart by the rules. Pairs never chain: a 2010 record that
matches a 2011 one that matches a 2012 one does not join the 2012 one's star unless it
matches that canonical itself and no veto stands between it and any member.

Pairs are taken strongest first (the more of year, volume, issue, first page, first author
and DOI agree, then the titles' score, then the references' ids, so that the same pairs
give the same stars). A pair of two references in no star founds one (the one
created first is its canonical); a reference joins a star when it is a duplicate of the
canonical and is apart from none of its members; two stars merge when every member of one
is a duplicate of the other's canonical and apart from none of its members. A person's
decisions are never moved.
"""

from __future__ import annotations

from collections.abc import Iterable

from import_pipeline.detection.pairs import Pair
from import_pipeline.domain.duplicates import Decision


def ordered(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


class Stars:
    """Stars under construction: each member's canonical and each canonical's members (the
    canonical first). `direct` holds the pairs that are duplicates of each other, `apart`
    the pairs the rules keep apart, `fixed` the references whose star may not change (a
    person's decisions, and stored members that are not decided again)."""

    def __init__(
        self,
        order: dict[str, tuple],
        direct: set[tuple[str, str]],
        apart: set[tuple[str, str]],
        fixed: set[str],
    ) -> None:
        self.order = order
        self.direct = direct
        self.apart = apart
        self.fixed = fixed
        self.canonical_of: dict[str, str] = {}
        self.members: dict[str, list[str]] = {}
        self.founded: set[str] = set()  # the canonicals of stars found here, not stored

    def keep(self, canonical: str, members: Iterable[str]) -> None:
        """A stored star, as it is."""
        star = self.members.setdefault(canonical, [canonical])
        self.canonical_of[canonical] = canonical
        for member in members:
            if member not in self.canonical_of:
                star.append(member)
                self.canonical_of[member] = canonical

    def _fits(self, ref: str, canonical: str) -> bool:
        return ordered(ref, canonical) in self.direct and not any(
            ordered(ref, member) in self.apart for member in self.members[canonical]
        )

    def add(self, pair: Pair) -> None:
        """One duplicate pair, as strong as or weaker than every pair added before."""
        x, y = pair.a, pair.b
        star_x, star_y = self.canonical_of.get(x), self.canonical_of.get(y)
        if star_x is None and star_y is None:
            if {x, y} & self.fixed or ordered(x, y) in self.apart:
                return
            canonical, member = sorted((x, y), key=lambda r: (self.order[r], r))
            self.members[canonical] = [canonical, member]
            self.canonical_of[canonical] = self.canonical_of[member] = canonical
            self.founded.add(canonical)
        elif star_y is None or star_x is None:
            free, star = (y, star_x) if star_y is None else (x, star_y)
            assert star is not None
            if free not in self.fixed and self._fits(free, star):
                self.members[star].append(free)
                self.canonical_of[free] = star
        elif star_x != star_y:
            self._merge(star_x, star_y)

    def _merge(self, first: str, second: str) -> None:
        """The two stars as one, if every member of one fits the other's canonical."""
        for target, source in sorted(
            ((first, second), (second, first)),
            key=lambda ts: (ts[0] in self.founded, self.order[ts[0]], ts[0]),
        ):
            moving = self.members[source]
            if any(m in self.fixed for m in moving):
                continue
            if all(self._fits(m, target) for m in moving):
                self.members[target].extend(moving)
                for m in moving:
                    self.canonical_of[m] = target
                del self.members[source]
                self.founded.discard(source)
                return

    def recentre(self) -> None:
        """Each star found here gets as canonical its member created first that every other
        member is a duplicate of (the first pair's earlier reference may not be it)."""
        for canonical in sorted(self.founded):
            star = self.members[canonical]
            for candidate in sorted(star, key=lambda r: (self.order[r], r)):
                if candidate == canonical:
                    break
                if candidate not in self.fixed and all(
                    ordered(candidate, m) in self.direct for m in star if m != candidate
                ):
                    rest = [m for m in star if m != candidate]
                    self.members[candidate] = [candidate, *rest]
                    del self.members[canonical]
                    for m in star:
                        self.canonical_of[m] = candidate
                    break


def form_stars(
    pairs: list[Pair],
    order: dict[str, tuple],
    stored_stars: dict[str, list[str]],
    apart: set[tuple[str, str]],
    fixed: set[str],
    kept_apart: set[str],
) -> Stars:
    """The stars of these pairs over the stored ones (canonical → members that stay)."""
    duplicates = [
        p for p in pairs if p.decision is Decision.DUPLICATE and not {p.a, p.b} & kept_apart
    ]
    direct = {ordered(p.a, p.b) for p in duplicates}
    for canonical, members in stored_stars.items():
        direct |= {ordered(canonical, m) for m in members if m in fixed}
    stars = Stars(order, direct, apart, fixed)
    for canonical, members in sorted(stored_stars.items()):
        stars.keep(canonical, members)
    for pair in sorted(duplicates, key=lambda p: (-p.agreement, -p.score, p.a, p.b)):
        stars.add(pair)
    stars.recentre()
    return stars


def pairs_to_check(pairs: list[Pair], stored_stars: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Every pair of references that may end in one star (within a connected group of the
    duplicate pairs and the stored stars): those whether the rules keep apart is asked."""
    parent: dict[str, str] = {}

    def root(ref: str) -> str:
        while parent.get(ref, ref) != ref:
            parent[ref] = parent.get(parent[ref], parent[ref])
            ref = parent[ref]
        return ref

    links = [(p.a, p.b) for p in pairs if p.decision is Decision.DUPLICATE]
    links += [(c, m) for c, members in stored_stars.items() for m in members]
    for a, b in links:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for ref in sorted({r for link in links for r in link}):
        groups.setdefault(root(ref), []).append(ref)
    return [
        (a, b)
        for members in groups.values()
        for i, a in enumerate(members)
        for b in members[i + 1 :]
    ]
