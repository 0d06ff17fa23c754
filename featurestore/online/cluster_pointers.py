"""Version pointers of the Redis Cluster store, and the rule by which a read accepts one.

Each master keeps its own copy of the pointer, ``<seq>:<version>``, where ``seq`` grows
with every publish. A publish seals its version on every master before switching any
pointer, which is what lets readers accept a sealed, newer version on a master whose
pointer still names the older one.
"""

from __future__ import annotations

from typing import NamedTuple


class Pointer(NamedTuple):
    """A published version and the sequence number of its publish (newer is larger)."""

    seq: int
    version: str

    def encode(self) -> bytes:
        """The stored form, ``<seq>:<version>``."""
        return b"%d:%s" % (self.seq, self.version.encode())


def parse_pointer(value: bytes | None) -> Pointer | None:
    """The pointer a master stores, None if it has none."""
    if value is None:
        return None
    seq, _, version = value.decode().partition(":")
    return Pointer(int(seq), version)


def acceptable(hint: Pointer, pointer: Pointer | None, hint_sealed: bool) -> bool:
    """Whether a master's answer belongs to the hinted version.

    Args:
        hint: the version the read asked for.
        pointer: the master's pointer.
        hint_sealed: whether the hinted version is sealed on that master.

    Returns:
        True when the pointer is the hint, or names an older version while the hint is
        sealed there (a publish under way or interrupted: readers roll it forward).
    """
    if pointer == hint:
        return True
    return hint_sealed and hint.seq > (0 if pointer is None else pointer.seq)
