"""Near-miss suggestions for misspelled names ("did you mean 'mean'?")."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping


def closest_name(
    word: str, candidates: Iterable[str], synonyms: Mapping[str, str] | None = None
) -> str | None:
    """Return the candidate closest to `word`, or None when nothing is close.

    Args:
        word: the name as the user wrote it.
        candidates: the names that would have been valid there.
        synonyms: words people commonly write for a candidate (`avg` for `mean`),
            which spelling similarity alone would not find.

    Returns:
        The best match (difflib ratio of at least 0.6), comparing case-insensitively
        so that `Mean` still suggests `mean`.
    """
    if synonyms and word.lower() in synonyms:
        return synonyms[word.lower()]
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[matches[0]] if matches else None


def did_you_mean(
    word: str, candidates: Iterable[str], synonyms: Mapping[str, str] | None = None
) -> str:
    """Return the " (did you mean 'x'?)" suffix for an error message, or "".

    Args:
        word: the name as the user wrote it.
        candidates: the names that would have been valid there.
        synonyms: as for `closest_name`.
    """
    match = closest_name(word, candidates, synonyms)
    return f" (did you mean '{match}'?)" if match is not None else ""
