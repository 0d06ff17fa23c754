"""Source templates of the driver kernels that the code generator fills in per view.

The per-aggregation pieces (fold, merge, finalize) are generated; these templates hold
the loops around them: walking entities and query times, extending tiles, packing and
unpacking state blobs. `$p` is the view's (or group's) function prefix.

State blob layout (float64 values): `[1.0, m_0, ..., m_{G-1}, tiles of group 0 (m_0 rows
of key + state), ..., tiles of group G-1, lifetime state]`. Tiles are sorted by key, so
by (level, index).
"""

from __future__ import annotations

from string import Template


def indent(lines: list[str], level: int) -> list[str]:
    """Indent source lines by `level` steps of four spaces."""
    pad = "    " * level
    return [pad + line if line else line for line in lines]


HEADER = '''\
"""Kernels generated from a feature registry. Do not edit: they are regenerated."""

import math

import numba
import numpy as np

from transforms.windows import (
    copy_row,
    copy_rows,
    decompose,
    find_tile,
    floor_div,
    level_starts,
    pack_slots,
    restart_searches,
    tile_index,
    tile_key,
    tile_level,
    unpack_slots,
)

MIN_TIME = -(2**62)
'''

BUILD_TEMPLATE = Template('''\
$jit
def ${p}_build(ts, V, e0, e1, old, m_old, T, cutoff):
    # Hop index of every event, once; level k's tile index is that shifted right by 2k
    # (sizes are hop * 4**k), which saves a division per event and level.
    n = e1 - e0
    hops = np.empty(n, np.int64)
    for i in range(n):
        hops[i] = floor_div(ts[e0 + i], $hop)
    m = 0
    p = 0
    for k in range($levels):
        shift = 2 * k
        size = $hop << shift
        i = 0
        while True:
            has_old = p < m_old and tile_level(old[p, 0]) == k
            has_event = i < n
            if not has_old and not has_event:
                break
            j_old = tile_index(old[p, 0]) if has_old else 0
            j_event = hops[i] >> shift if has_event else 0
            j = j_old if has_old and (not has_event or j_old <= j_event) else j_event
            # Row m is written either way; a tile before the cutoff is simply not kept
            # (m stays), so the next tile overwrites it.
            T[m, 0] = tile_key(k, j)
            if has_old and j_old == j:
                copy_row(old, p, T, m)
                p += 1
            else:
                ${p}_empty(T, m)
            while i < n and (hops[i] >> shift) == j:
                r = e0 + i
$fold
                i += 1
            if j * size >= cutoff:
                m += 1
    return m
''')

TRAINING_TEMPLATE = Template('''\
$sig
def ${p}_training(ent, ts, V, qent, qts, out):
    n = ent.shape[0]
    q = qent.shape[0]
    longest = 0
    i = 0
    while i < n:
        k = i
        while k < n and ent[k] == ent[i]:
            k += 1
        if k - i > longest:
            longest = k - i
        i = k
    lv = np.empty($max_blocks, np.int64)
    ix = np.empty($max_blocks, np.int64)
    hint = np.empty($max_levels, np.int64)
    life = np.empty((1, $life_width + 1))
$alloc_groups
$alloc_tiles
    i = 0
    j = 0
    while j < q:
        e = qent[j]
        while i < n and ent[i] < e:
            i += 1
        e0 = i
        while i < n and ent[i] == e:
            i += 1
        e1 = i
        j0 = j
        while j < q and qent[j] == e:
            j += 1
$build_groups
        ${p}_life_empty(life, 0)
        p = e0
        for c in range(j0, j):
            t = qts[c]
            while p < e1 and ts[p] < t:
                ${p}_life_fold(life, 0, ts, V, p)
                p += 1
            ${p}_life_final(life, 0, out, c, t)
$head_groups
''')

STATES_TEMPLATE = Template('''\
$sig
def ${p}_states(ent, ts, V, old_data, old_off, end):
    n = ent.shape[0]
    ne = 0
    longest = 0
    most_old = 0
    bound = 0
    i = 0
    while i < n:
        k = i
        while k < n and ent[k] == ent[i]:
            k += 1
        if k - i > longest:
            longest = k - i
        if old_off[ne + 1] - old_off[ne] > most_old:
            most_old = old_off[ne + 1] - old_off[ne]
        bound += old_off[ne + 1] - old_off[ne] + 1 + $ngroups + $life_width + $tile_bound
        ne += 1
        i = k
$alloc_scratch
    data = np.empty(bound)
    off = np.empty(ne + 1, np.int64)
    ents = np.empty(ne, np.int64)
    life = np.empty((1, $life_width + 1))
    o = 0
    i = 0
    u = 0
    while i < n:
        e0 = i
        while i < n and ent[i] == ent[e0]:
            i += 1
        e1 = i
        ents[u] = ent[e0]
        off[u] = o
        a0 = old_off[u]
        a1 = old_off[u + 1]
        has_old = a1 > a0
        pos_old = a0 + 1 + $ngroups
        data[o] = 1.0
        w = o + 1 + $ngroups
$states_groups
        if has_old:
            unpack_slots(old_data, pos_old, $life_width, life, 0)
        else:
            ${p}_life_empty(life, 0)
        for r in range(e0, e1):
            ${p}_life_fold(life, 0, ts, V, r)
        pack_slots(life, 0, $life_width, data, w)
        o = w + $life_width
        u += 1
    off[ne] = o
    return data[:o].copy(), off, ents
''')

VALUES_TEMPLATE = Template('''\
$sig
def ${p}_values(data, off, at, out):
    lv = np.empty($max_blocks, np.int64)
    ix = np.empty($max_blocks, np.int64)
    hint = np.empty($max_levels, np.int64)
    life = np.empty((1, $life_width + 1))
$alloc_groups
    for b in range(off.shape[0] - 1):
        a0 = off[b]
        a1 = off[b + 1]
        t = at[b]
        pos = a0 + 1 + $ngroups
$values_groups
        if a1 > a0:
            unpack_slots(data, pos, $life_width, life, 0)
        else:
            ${p}_life_empty(life, 0)
        ${p}_life_final(life, 0, out, b, t)
''')
