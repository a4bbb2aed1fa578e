#!/usr/bin/env python3
"""Generates the fw benchmark inputs (deterministic, fixed seed).

   gen.py SHARED_IPSETS_DIR OUTDIR

The real lists (firehol_level1, spamhaus_drop, dshield, feodo) are completed to exactly
1,000,000 IPv4 entries with generated singles (11.0.0.0/8, every 4th address so none
merge) and /28 networks (21.0.0.0/8, 32 apart so none touch). Those blocks are checked
to lie outside every real list (firehol already holds all reserved space), so the
union keeps every entry. Generated addresses only go into sets: no packet is ever sent.

Files: real lists are used in place; OUTDIR/gen4.netset, gen6.netset (180k singles in
2001:db8::/32 + 20k /64s in 3fff::/20), gen4-delta.netset (gen4 with 5k singles
removed and 5k added = a 10k-element delta), nft-interval.nft and nft-hash.nft (the
same 1M IPv4 entries for the `nft -f` peer; the hash set gets each network's first
address, since a hash set cannot hold a range), counts.
"""
import ipaddress
import os
import random
import sys

REAL = ["firehol_level1.netset", "spamhaus_drop.netset", "dshield.netset", "feodo.ipset"]
TOTAL4, CIDRS4, TOTAL6, CIDRS6 = 1_000_000, 100_000, 200_000, 20_000
SINGLE_BASE = 11 << 24
CIDR_BASE = 21 << 24


def ip4(a):
    return "%d.%d.%d.%d" % (a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255)


def main():
    ipsets, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    rnd = random.Random(20261127)
    real = []
    for name in REAL:
        with open(os.path.join(ipsets, name)) as f:
            real += [l.split("#", 1)[0].strip() for l in f if l.split("#", 1)[0].strip()]
    real_nets = list(ipaddress.collapse_addresses(
        ipaddress.IPv4Network(e, strict=False) for e in real))
    for n in real_nets:  # the generated blocks must not be swallowed by a real range
        for base in (SINGLE_BASE, CIDR_BASE):
            if n.overlaps(ipaddress.IPv4Network((base, 8))):
                sys.exit("gen.py: %s overlaps the generated block %s/8" % (n, ip4(base)))
    n_single = TOTAL4 - len(real) - CIDRS4
    slots = list(range(n_single + 5000))
    rnd.shuffle(slots)
    extra, singles = slots[:5000], slots[5000:]
    gen4 = [ip4(SINGLE_BASE + 4 * i) for i in singles]
    gen4 += ["%s/28" % ip4(CIDR_BASE + 32 * i) for i in range(CIDRS4)]
    rnd.shuffle(gen4)
    with open(os.path.join(outdir, "gen4.netset"), "w") as f:
        f.write("# generated benchmark entries, see tests/bench/fw/gen.py\n")
        f.write("\n".join(gen4) + "\n")
    drop = set(rnd.sample([i for i, e in enumerate(gen4) if "/" not in e], 5000))
    delta = [e for i, e in enumerate(gen4) if i not in drop]
    delta += [ip4(SINGLE_BASE + 4 * i) for i in extra]
    with open(os.path.join(outdir, "gen4-delta.netset"), "w") as f:
        f.write("\n".join(delta) + "\n")
    six = ["2001:db8::%x:%x" % ((4 * i) >> 16, (4 * i) & 0xffff) for i in range(TOTAL6 - CIDRS6)]
    six += ["3fff:%x:%x::/64" % (i >> 16, i & 0xffff) for i in range(CIDRS6)]
    rnd.shuffle(six)
    with open(os.path.join(outdir, "gen6.netset"), "w") as f:
        f.write("\n".join(six) + "\n")
    sorted_gen = sorted(gen4, key=lambda e: tuple(int(x) for x in e.split("/")[0].split(".")))
    peer = [str(n) if n.prefixlen < 32 else str(n.network_address) for n in real_nets]
    with open(os.path.join(outdir, "nft-interval.nft"), "w") as f:
        f.write("table inet benchpeer {\n set s {\n  type ipv4_addr\n  flags interval\n  elements = {\n")
        f.write(",\n".join(peer + sorted_gen) + "\n  }\n }\n}\n")
    with open(os.path.join(outdir, "nft-hash.nft"), "w") as f:
        f.write("table inet benchpeer {\n set s {\n  type ipv4_addr\n  elements = {\n")
        f.write(",\n".join([p.split("/")[0] for p in peer] + [g.split("/")[0] for g in sorted_gen]))
        f.write("\n  }\n }\n}\n")
    with open(os.path.join(outdir, "counts"), "w") as f:
        f.write("input_v4=%d peer_v4=%d input_v6=%d\n" % (len(real) + len(gen4),
                len(peer) + len(gen4), len(six)))


if __name__ == "__main__":
    main()
