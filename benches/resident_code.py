#!/usr/bin/env python3
"""Which crates' code pages of BINARY are resident in process PID.

usage: benches/resident_code.py PID BINARY (as root, for /proc/PID/pagemap). Reads the
present bit of every page of BINARY's mappings and attributes resident code pages to the
symbols (`nm -C -S`) they hold, summed by crate (C++ symbols as one group).
"""
import sys, re, struct, subprocess, collections, bisect
pid, binary = sys.argv[1], sys.argv[2]
PAGE = 4096
segs = []
for line in subprocess.run(['readelf', '-lW', binary], capture_output=True, text=True).stdout.splitlines():
    f = line.split()
    if f and f[0] == 'LOAD':
        segs.append((int(f[1], 16), int(f[2], 16), int(f[5], 16), f[6:-1]))  # offset, vaddr, memsz, flags
syms = []
for line in subprocess.run(['nm', '-C', '-S', '--defined-only', binary], capture_output=True, text=True).stdout.splitlines():
    p = line.split(' ', 3)
    if len(p) < 4 or p[2] not in 'tTwW': continue
    addr, size, name = int(p[0], 16), int(p[1], 16), p[3]
    m = re.match(r'[<&\s]*(?:dyn )?([A-Za-z_][A-Za-z0-9_]*)(::|$)', name)
    crate = m.group(1) if m else '?'
    if crate in ('core', 'alloc', 'std'):
        m2 = re.search(r'<([a-z_][a-z0-9_]*)::', name)
        crate = crate + '<' + (m2.group(1) if m2 else '') + '>'
    if '::' not in name and not name.startswith('<'): crate = 'C/C++'
    syms.append((addr, size, crate))
syms.sort()
addrs = [s[0] for s in syms]
def vaddr_of_offset(off):
    for o, v, sz, _ in segs:
        if o <= off < o + sz: return v + off - o
    return None
resident = collections.Counter(); total = collections.Counter()
pm = open(f'/proc/{pid}/pagemap', 'rb')
for line in open(f'/proc/{pid}/maps'):
    f = line.split()
    if len(f) < 6 or not f[5].endswith(binary.split('/')[-1]) and f[5] != binary: continue
    start, end = (int(x, 16) for x in f[0].split('-')); off = int(f[2], 16)
    for va in range(start, end, PAGE):
        pm.seek(va // PAGE * 8); e = struct.unpack('<Q', pm.read(8))[0]
        present = bool(e >> 63 & 1)
        total[f[1]] += PAGE
        if not present: continue
        resident[f[1]] += PAGE
        if 'x' in f[1]:
            sv = vaddr_of_offset(off + va - start)
            # attribute the page to crates by overlap
            lo, hi = sv, sv + PAGE
            i = max(bisect.bisect_right(addrs, lo) - 1, 0)
            while i < len(syms) and syms[i][0] < hi:
                a, s, c = syms[i]
                ov = min(hi, a + s) - max(lo, a)
                if ov > 0: resident['code:' + c] += ov
                i += 1
for k in total: print(f'{k}: resident {resident[k]/1e6:.1f} of {total[k]/1e6:.1f} MB')
code = [(v, k[5:]) for k, v in resident.items() if k.startswith('code:')]
print('code attributed', sum(v for v, _ in code) / 1e6)
for v, k in sorted(code, reverse=True)[:40]: print(f'{v/1e6:7.2f} {k}')
