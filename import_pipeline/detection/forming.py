"""Stars from pairs (contract section 8): every duplicate matches its canonical itself, and no
two members of one star are kept apart by the rules. Pairs never chain: a 2010 record that
matches a 2011 one that matches a 2012 one does not join the 2012 one's star unless it
matches that canonical itself and no veto stands between it and any member.

Pairs are taken strongest first (the more of year, volume, issue, first page, first author
and DOI agree, then the titles' score, then the authors' and venues' similarities, then the
references' ids, so that the same pairs give the same stars). Each pair unites the groups of
its references (a star, or the reference alone) when no member of one is apart from a member
of the other and one member is a duplicate of every other: that member is the canonical (the
one created first, among those that qualify; a stored star keeps its own). A person's
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

    def _pinned(self, canonical: str) -> bool:
        """A stored star, or one holding a reference that may not move, keeps its canonical."""
        return canonical not in self.founded or any(
            m in self.fixed for m in self.members[canonical]
        )

    def _centre(self, members: list[str], pinned: str | None) -> str | None:
        """The canonical of these members: the pinned one, else the one created first that
        every other member is a duplicate of; None if there is none."""
        candidates = [pinned] if pinned else sorted(members, key=lambda r: (self.order[r], r))
        for candidate in candidates:
            if all(m == candidate or ordered(m, candidate) in self.direct for m in members):
                return candidate
        return None

    def _unite(self, first: list[str], second: list[str]) -> None:
        """Two groups as one star, if no member of one is apart from one of the other and a
        member (the pinned canonical, if any) is the canonical of every other."""
        if any(ordered(x, y) in self.apart for x in first for y in second):
            return
        pinned = {
            self.canonical_of[group[0]]
            for group in (first, second)
            if group[0] in self.canonical_of and self._pinned(self.canonical_of[group[0]])
        }
        if len(pinned) > 1:
            return
        members = first + second
        canonical = self._centre(members, next(iter(pinned), None))
        if canonical is None:
            return
        for group in (first, second):
            old = self.canonical_of.get(group[0])
            if old is not None:
                del self.members[old]
                self.founded.discard(old)
        self.members[canonical] = [canonical, *(m for m in members if m != canonical)]
        for m in members:
            self.canonical_of[m] = canonical
        if not pinned:
            self.founded.add(canonical)

    def add(self, pair: Pair) -> None:
        """One duplicate pair, as strong as or weaker than every pair added before: the
        groups of its two references (a star, or the reference alone) become one star if
        they can."""
        groups = []
        for ref in (pair.a, pair.b):
            canonical = self.canonical_of.get(ref)
            if canonical is None and ref in self.fixed:
                return
            groups.append(self.members[canonical] if canonical else [ref])
        if groups[0] is not groups[1]:
            self._unite(list(groups[0]), list(groups[1]))


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
    for pair in sorted(duplicates, key=lambda p: (-p.agreement, -p.score, -p.support, p.a, p.b)):
        stars.add(pair)
    return stars


def pairs_to_check(
    pairs: list[Pair], stored_stars: dict[str, list[str]], fixed: set[str]
) -> list[tuple[str, str]]:
    """Every pair of references that may end in one star (within a connected group of the
    duplicate pairs and the stored stars), but two that stay where they are (`fixed`):
    those whether the rules keep apart is asked."""
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
        if a not in fixed or b not in fixed
    ]
