"""Lua scripts of the Redis Cluster online store, each run on one master at a time.

A cluster refuses a command whose declared keys hash to different slots, so the scripts
take their keys in ARGV (zero declared keys: the master runs them itself) and carry the
``allow-cross-slot-keys`` flag. Inside, each key is touched by a single-key command: the
master rejects any key of a slot it does not own ("non local key"), which the store takes
as a cluster change. Readers' script is flagged ``no-writes`` and sent as EVALSHA_RO.

Scripts run atomically on their master, which is what makes one entity's states (one
slot, so one master) change together, and a check-then-write on a master race-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import sha1


@dataclass(frozen=True)
class Script:
    """A Lua script body and the commands that run it.

    Attributes:
        body: the Lua source, shebang line first.
        read_only: whether it is flagged no-writes (then sent as EVALSHA_RO / EVAL_RO).
    """

    body: str
    read_only: bool = False
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", sha1(self.body.encode()).hexdigest())

    def by_sha(self, args: list[bytes]) -> tuple:
        """The EVALSHA command for `args` (ARGV; no declared keys)."""
        return ("EVALSHA_RO" if self.read_only else "EVALSHA", self.sha, 0, *args)

    def by_body(self, args: list[bytes]) -> tuple:
        """The EVAL command for `args`, used when the master has not cached the script."""
        return ("EVAL_RO" if self.read_only else "EVAL", self.body, 0, *args)


# GET of each ARGV key: nil where absent. The readers' snapshot on one master.
GET_EACH = Script("""#!lua flags=no-writes,allow-cross-slot-keys
local values = {}
for i = 1, #ARGV do
    values[i] = redis.call('GET', ARGV[i])
end
return values
""", read_only=True)

# SET of ARGV key/value pairs: bulk staging.
SET_PAIRS = Script("""#!lua flags=allow-cross-slot-keys
for i = 1, #ARGV, 2 do
    redis.call('SET', ARGV[i], ARGV[i + 1])
end
return #ARGV / 2
""")

# ARGV[1] is a version's sealed marker, then key/value pairs. Writes only while the
# version is sealed on this master, so a dropped version is never brought back; every key
# is checked local before the first write, so a cluster change writes nothing here.
SET_PAIRS_IF_SEALED = Script("""#!lua flags=allow-cross-slot-keys
if redis.call('EXISTS', ARGV[1]) == 0 then
    return 0
end
for i = 2, #ARGV, 2 do
    redis.call('EXISTS', ARGV[i])
end
for i = 2, #ARGV, 2 do
    redis.call('SET', ARGV[i], ARGV[i + 1])
end
return 1
""")

# ARGV: staged marker, sealed marker, publish sequence. Seals a staged version.
SEAL = Script("""#!lua flags=allow-cross-slot-keys
if redis.call('EXISTS', ARGV[1]) == 0 then
    return 0
end
redis.call('SET', ARGV[2], ARGV[3])
return 1
""")

# ARGV: pointer, sealed marker, new pointer value "<seq>:<version>", its seq. Switches
# the pointer only to a sealed version newer than the one it names.
SWITCH_POINTER = Script("""#!lua flags=allow-cross-slot-keys
if redis.call('EXISTS', ARGV[2]) == 0 then
    return 0
end
local current = redis.call('GET', ARGV[1])
if current and tonumber(string.match(current, '^(%d+):')) >= tonumber(ARGV[4]) then
    return 0
end
redis.call('SET', ARGV[1], ARGV[3])
return 1
""")

# UNLINK of each ARGV key (one slot per command, as the cluster requires).
UNLINK_EACH = Script("""#!lua flags=allow-cross-slot-keys
for i = 1, #ARGV do
    redis.call('UNLINK', ARGV[i])
end
return #ARGV
""")

# ARGV: lock key, token. Deletes the lock only if this holder still owns it.
RELEASE_LOCK = Script("""#!lua flags=allow-cross-slot-keys
if redis.call('GET', ARGV[1]) == ARGV[2] then
    return redis.call('DEL', ARGV[1])
end
return 0
""")
