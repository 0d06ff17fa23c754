"""A benchmark child's own peak memory."""

from __future__ import annotations


def peak_mb() -> float:
    """This process's peak resident set size (VmHWM) in MB.

    Not `ru_maxrss` from the parent: on Linux a freshly spawned child inherits the
    parent's high-water mark, so that figure can be the parent's.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
