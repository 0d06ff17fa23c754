"""Key names of the Redis Cluster online store, and the hash tags that place them.

Redis Cluster hashes only the part of a key between the first ``{`` and the next ``}``
(the hash tag) when there is one, so keys sharing a tag share a slot, and a slot lives on
one master. Every key here starts with its tag, so nothing before it (a view name, which
may contain ``{``) can move the tag:

    {<entity tag>}fs:<project>:v:<version>:s:<view>:<entity>   state of one entity
    {<home tag>}fs:<project>:current                           "<seq>:<version>" pointer
    {<home tag>}fs:<project>:v:<version>:staged                 marker: staged here
    {<home tag>}fs:<project>:v:<version>:sealed                 marker: publish sealed it
    {<home tag>}fs:<project>:v:<version>:mseq                   metadata sequence
    {<home tag>}fs:<project>:v:<version>:m:<name>               metadata copy
    {fs:<project>}:seq                                          publish sequence counter
    {fs:<project>}:lock                                         project write lock

The entity tag is 16 hex digits of the BLAKE2b hash of `encode_entity_key`: it depends on
the entity only, so one entity's states in every view share a slot (one script updates
them atomically), and hex never contains ``}``. Each master has a home tag, the first of
``h0``, ``h1``, ... whose slot it owns, holding that master's copy of the pointer,
markers and metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from hashlib import blake2b

from redis.crc import key_slot

_ENTITY_TAG_BYTES = 8
_HOME_TAG_SEARCH_LIMIT = 1_000_000


def entity_tag(encoded_entity: bytes) -> bytes:
    """The ``{...}`` hash tag of an encoded entity key: 16 lowercase hex digits."""
    digest = blake2b(encoded_entity, digest_size=_ENTITY_TAG_BYTES).hexdigest()
    return b"{" + digest.encode() + b"}"


def tag_slot(tag: bytes) -> int:
    """The cluster slot of every key starting with the ``{...}`` tag."""
    return key_slot(tag)


def home_tags(owners: Mapping[int, str] | list[str], primaries: Iterable[str]) -> dict[str, bytes]:
    """For each master, the first tag ``{h<i>}`` whose slot it owns.

    Args:
        owners: the master address owning each slot (indexable by slot).
        primaries: the master addresses.

    Raises:
        ValueError: a master owns no slot reachable by the search (it owns no slot).
    """
    missing = set(primaries)
    tags: dict[str, bytes] = {}
    for index in range(_HOME_TAG_SEARCH_LIMIT):
        if not missing:
            break
        tag = b"{h%d}" % index
        owner = owners[tag_slot(tag)]
        if owner in missing:
            tags[owner] = tag
            missing.discard(owner)
    if missing:
        raise ValueError(f"no home slot found for cluster masters {sorted(missing)}")
    return tags


class ClusterKeys:
    """Builds the key names of one project (layout in the module docstring).

    Args:
        project: a validated project name.
    """

    def __init__(self, project: str) -> None:
        self.body = b"fs:" + project.encode() + b":"
        self.project_tag = b"{fs:" + project.encode() + b"}"
        self.sequence_key = self.project_tag + b":seq"
        self.lock_key = self.project_tag + b":lock"
        # Matches every versioned key of the project on a node; `version_of` filters out
        # the few other keys a glob this loose could match.
        self.versions_pattern = b"{*}" + self.body + b"v:*"

    def state_key(self, tag: bytes, version: str, view_part: bytes, entity: bytes) -> bytes:
        """Key of one state; `view_part` is ``s:<view>:``."""
        return tag + self.body + b"v:" + version.encode() + b":" + view_part + entity

    def pointer_key(self, home: bytes) -> bytes:
        """A master's copy of the published-version pointer."""
        return home + self.body + b"current"

    def version_key(self, home: bytes, version: str, suffix: bytes) -> bytes:
        """A per-version key under a home tag: ``staged``, ``sealed``, ``mseq``, ``m:<name>``."""
        return home + self.body + b"v:" + version.encode() + b":" + suffix

    def version_of(self, key: bytes) -> str | None:
        """The version a versioned key belongs to, None if it is not one of this project's."""
        close = key.find(b"}")
        if not key.startswith(b"{") or close < 0:
            return None
        rest = key[close + 1:]
        if not rest.startswith(self.body + b"v:"):
            return None
        return rest[len(self.body) + 2:].partition(b":")[0].decode()
