#!/usr/bin/env bash
# tests/bench/gen-domains.sh N [SEED]
# Prints N unique, plausible domain names, one per line, the same for the same N and
# SEED on every machine (own splitmix64 generator, not the language's random module).
# Names look like what blocklists hold: word pairs, vendor-ish hyphenated names,
# numbered hosts, DGA-like hex labels, some with a subdomain; ASCII only, labels of
# at most 63 characters, names well under 253. Used to grow the shared lists to 1M
# names for domain-set and DNS benchmarks.
set -euo pipefail
if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]] || { [ $# -ge 2 ] && ! [[ $2 =~ ^[0-9]+$ ]]; }; then
    echo "usage: $0 N [SEED]   (N names, deterministic for a given SEED, default 1)" >&2
    exit 2
fi
exec python3 - "$1" "${2:-1}" <<'PY'
import sys

n, seed = int(sys.argv[1]), int(sys.argv[2])
M = (1 << 64) - 1
state = (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & M

def rnd():
    global state
    state = (state + 0x9E3779B97F4A7C15) & M
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)

def pick(seq):
    return seq[rnd() % len(seq)]

WORDS = """ad ads adv analytics api app apps bid best blue box buzz cash cdn click cloud
code coin data deal deals digital direct dns edge event fast feed file free fun game
games get go gold green hub img info link live mail market media metric metrics mobile
my net news now one online page pixel play plus point pro promo push quick rank red
search secure sense server shop site smart social soft star static stat stats store
stream sync tag tags tech top track tracker traffic trend video view vip web win world
zone""".split()
SUBS = "www m api cdn static img ads track t s1 s2 eu us app mail go click pixel".split()
TLDS = ("com com com com net net org info io co biz xyz top site online shop club app "
        "de fr uk nl ru br jp in it es pl cn").split()
HEX = "0123456789abcdef"

seen = set()
out = sys.stdout
while len(seen) < n:
    kind = rnd() % 10
    if kind < 4:
        sld = pick(WORDS) + pick(WORDS)
    elif kind < 6:
        sld = pick(WORDS) + "-" + pick(WORDS) + str(rnd() % 1000)
    elif kind < 8:
        sld = pick(WORDS) + pick(WORDS) + str(rnd() % 100000)
    else:
        sld = "".join(HEX[rnd() % 16] for _ in range(8 + rnd() % 9))
    name = sld + "." + pick(TLDS)
    r = rnd() % 4
    if r == 0:
        name = pick(SUBS) + "." + name
    elif r == 1:
        name = pick(SUBS) + str(rnd() % 100) + "." + name
    if name in seen:
        continue
    seen.add(name)
    out.write(name + "\n")
PY
