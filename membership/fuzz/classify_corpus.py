#!/usr/bin/env python3
"""Counts the kinds of IGMP/MLD packet in a corpus of the input_path target, as the target
splits each input (the first byte is the length of the first packet, the rest is the second).
A heuristic over the headers, to tell whether the fuzzer reaches a kind of message at all; an
MLD packet without a hop-by-hop Router Alert or a link-local source is marked, since the Host
drops it before the state machine.

    python3 fuzz/classify_corpus.py fuzz/corpus/input_path
"""
import os, sys, collections
d = sys.argv[1]
counts = collections.Counter()
def classify(p):
    if not p: return None
    v = p[0] >> 4
    if v == 4:
        ihl = (p[0] & 15) * 4
        if len(p) < ihl + 8 or p[9] != 2: return None
        t = p[ihl]; body = len(p) - ihl
        tot = int.from_bytes(p[2:4], 'big'); body = min(body, tot - ihl)
        if t == 0x11: return 'igmpv3-query' if body >= 12 else 'igmpv1/v2-query'
        if t == 0x22: return 'igmpv3-report'
        if t in (0x12, 0x16): return 'igmpv1/v2-report'
        if t == 0x17: return 'igmp-leave'
        return None
    if v == 6:
        if len(p) < 40: return None
        nh = p[6]; off = 40; ra = False
        src_ll = p[8] == 0xfe and (p[9] & 0xc0) == 0x80
        plen = int.from_bytes(p[4:6], 'big')
        while nh in (0, 43, 60, 51) and off + 8 <= len(p):
            if nh == 0:
                opts = p[off+2: off + 8 * (p[off+1] + 1)]
                i = 0
                while i < len(opts):
                    if opts[i] == 0: i += 1; continue
                    if i + 1 >= len(opts): break
                    if opts[i] == 5: ra = True
                    i += 2 + opts[i+1]
            n = p[off]
            off += (p[off+1] + 2) * 4 if nh == 51 else 8 * (p[off+1] + 1)
            nh = n
        if nh != 58 or off + 8 > len(p): return None
        t = p[off]; body = min(len(p), 40 + plen) - off
        tag = '' if (ra and src_ll) else ' (no RA or not link-local)'
        if t == 130: return ('mldv2-query' if body >= 28 else 'mldv1-query') + tag
        if t == 143: return 'mldv2-report' + tag
        if t in (131, 132): return 'mldv1-report/done' + tag
    return None
files = [os.path.join(d, f) for f in os.listdir(d)]
for f in files:
    data = open(f, 'rb').read()
    n = min(data[0], len(data)) if data else 0
    kinds = {classify(data[:n]), classify(data[n:])} - {None}
    for k in kinds: counts[k] += 1
print(len(files), 'inputs')
for k, v in sorted(counts.items()): print(f'{v:5} {k}')
