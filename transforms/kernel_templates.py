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
    copy_rows,
    copy_slots,
    decompose,
    find_tile,
    floor_div,
    tile_index,
    tile_key,
)

MIN_TIME = -(2**62)
'''

BUILD_TEMPLATE = Template('''\
$jit
def ${p}_build(ts, V, e0, e1, old, m_old, T, cutoff):
    sizes = (${ratio_levels},)
    scratch = np.empty(T.shape[1])
    m = 0
    p = 0
    for k in range($levels):
        size = $hop * sizes[k]
        level_end = (k + 1) * 2.0**45
        i = e0
        while True:
            k_old = old[p, 0] if p < m_old and old[p, 0] < level_end else np.inf
            k_ev = tile_key(k, floor_div(ts[i], size)) if i < e1 else np.inf
            if k_old == np.inf and k_ev == np.inf:
                break
            key = min(k_old, k_ev)
            keep = tile_index(key) * size >= cutoff
            st = T[m, 1:] if keep else scratch[1:]
            if keep:
                T[m, 0] = key
                m += 1
            if k_old == key:
                copy_slots(old[p, 1:], st)
                p += 1
            else:
                ${p}_empty(st)
            while i < e1 and tile_key(k, floor_div(ts[i], size)) == key:
                ${p}_fold(st, ts[i], V, i)
                i += 1
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
    life = np.empty($life_width + 1)
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
        ${p}_life_empty(life)
        p = e0
        for c in range(j0, j):
            t = qts[c]
            while p < e1 and ts[p] < t:
                ${p}_life_fold(life, ts[p], V, p)
                p += 1
            ${p}_life_final(life, out, c, t)
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
    life = np.empty($life_width + 1)
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
            copy_slots(old_data[pos_old:pos_old + $life_width], life)
        else:
            ${p}_life_empty(life)
        for r in range(e0, e1):
            ${p}_life_fold(life, ts[r], V, r)
        copy_slots(life[:$life_width], data[w:w + $life_width])
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
    life = np.empty($life_width + 1)
$alloc_groups
    for b in range(off.shape[0] - 1):
        a0 = off[b]
        a1 = off[b + 1]
        t = at[b]
        pos = a0 + 1 + $ngroups
$values_groups
        if a1 > a0:
            copy_slots(data[pos:pos + $life_width], life)
        else:
            ${p}_life_empty(life)
        ${p}_life_final(life, out, b, t)
''')
