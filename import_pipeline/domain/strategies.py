"""The collision strategies (contract section 5), as one table the resolver reads.

A strategy says what a line does to the one stored reference its identifiers match: whether it
writes into it at all, what happens to the reference's identifiers and enhancements, and what
the line's result is. Lines that match no stored reference always create one; lines that
match two or more always fail (`IdentifierCollision`), whatever the strategy.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CollisionStrategy(StrEnum):
    """What a line that matches one stored reference does to it (contract section 5)."""

    MERGE_DEFENSIVE = "merge_defensive"
    MERGE_AGGRESSIVE = "merge_aggressive"
    APPEND = "append"
    OVERWRITE = "overwrite"
    DISCARD = "discard"
    FAIL = "fail"


class OnMatch(StrEnum):
    """What becomes of a line whose cluster matches one stored reference."""

    MERGE = "merge"  # its parts are written into that reference
    KEEP_STORED = "keep_stored"  # nothing is written; `completed` with the stored reference
    FAIL = "fail"  # nothing is written; `failed` with `DuplicateReference`


class IdentifierMerge(StrEnum):
    """How incoming identifiers meet the matched reference's (same type and, for `other`,
    same `other_identifier_name`)."""

    ADD_NEW_TYPES = "add_new_types"  # an identifier of a type the reference has is left out
    REPLACE_SAME_TYPE = "replace_same_type"  # incoming replaces the stored ones of its type


class EnhancementMerge(StrEnum):
    """How incoming enhancements meet the matched reference's. An exact duplicate of a stored
    enhancement is never stored twice, whichever applies."""

    ADD_NEW_TYPE_AND_SOURCE = "add_new_type_and_source"  # left out if (type, source) is stored
    REPLACE_SAME_TYPE_AND_SOURCE = "replace_same_type_and_source"
    ADD_ALL = "add_all"
    REPLACE_ALL = "replace_all"  # the reference's enhancements become the incoming ones


@dataclass(frozen=True)
class StrategyRule:
    on_match: OnMatch
    identifiers: IdentifierMerge
    enhancements: EnhancementMerge
    #: The matched reference takes the incoming line's visibility.
    takes_visibility: bool


#: Every strategy, by what it does (the meanings of the DESTINY repository's former ones).
STRATEGIES: dict[CollisionStrategy, StrategyRule] = {
    CollisionStrategy.MERGE_DEFENSIVE: StrategyRule(
        OnMatch.MERGE,
        IdentifierMerge.ADD_NEW_TYPES,
        EnhancementMerge.ADD_NEW_TYPE_AND_SOURCE,
        takes_visibility=False,
    ),
    CollisionStrategy.MERGE_AGGRESSIVE: StrategyRule(
        OnMatch.MERGE,
        IdentifierMerge.REPLACE_SAME_TYPE,
        EnhancementMerge.REPLACE_SAME_TYPE_AND_SOURCE,
        takes_visibility=True,
    ),
    CollisionStrategy.APPEND: StrategyRule(
        OnMatch.MERGE,
        IdentifierMerge.REPLACE_SAME_TYPE,
        EnhancementMerge.ADD_ALL,
        takes_visibility=True,
    ),
    CollisionStrategy.OVERWRITE: StrategyRule(
        OnMatch.MERGE,
        IdentifierMerge.REPLACE_SAME_TYPE,
        EnhancementMerge.REPLACE_ALL,
        takes_visibility=True,
    ),
    # The identifier and enhancement rules of these two never apply: nothing is merged.
    CollisionStrategy.DISCARD: StrategyRule(
        OnMatch.KEEP_STORED,
        IdentifierMerge.ADD_NEW_TYPES,
        EnhancementMerge.ADD_NEW_TYPE_AND_SOURCE,
        takes_visibility=False,
    ),
    CollisionStrategy.FAIL: StrategyRule(
        OnMatch.FAIL,
        IdentifierMerge.ADD_NEW_TYPES,
        EnhancementMerge.ADD_NEW_TYPE_AND_SOURCE,
        takes_visibility=False,
    ),
}
