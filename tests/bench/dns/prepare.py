#!/usr/bin/env python3
"""Builds the inputs of the DNS benchmark, deterministically from a seed.

    prepare.py --data DIR --out DIR [--total 1000000] [--seed 4] [--gen CMD]
               [--allowed 20000] [--blocked 20000]

Writes into --out:
  block.domains     the blocklist, one name per line, exactly --total unique names:
                    the union of the shared lists (about 350k names) followed by
                    generated names (CMD N SEED, or the built-in generator)
  block.adblock     the same names as `||name^` (input of `otasukectl set build`)
  block.rpz         unbound RPZ zone: `name CNAME .` and `*.name CNAME .` per name
  block.dnsmasq     `server=/name/` per name (a --servers-file; dnsmasq re-reads it on
                    SIGHUP, unlike address= lines; same NXDOMAIN-for-the-subtree answer)
  *.reload.*        the same lists plus the probe name, used for the reload test
  internet.conf     unbound local-data for the allowed names and the probe (the
                    loopback "internet")
  q-allowed.txt     dnsperf query file: names not blocked by any entry (nor any parent),
                    from the built-in generator
  q-blocked.txt     half list names, half subdomains of list names ("x.name")
  meta.json         counts and the probe name

Every list means "block this name and its whole subtree" for every peer: dnsmasq can only
do subtree, so unbound RPZ gets the `*.` record too and dnsd gets adblock `||x^` rules.
"""
import argparse
import itertools
import json
import os
import random
import re
import subprocess
import sys

LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")

SYLL = ("ba be bi bo bu ca ce co cu da de di do du fa fe fi fo ga ge go gu ha he hi ho "
        "ja jo ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po "
        "pu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo wa we wi xa ya yo "
        "za ze zi zo tra pro bel cor dan fin gal hol mar nor pet sol ter vin").split()
WORDS = ("shop cloud data web net app mail cdn static media news tech home best top "
         "online secure fast free my get go smart info market store track ads click "
         "stat metric pixel tag sync live play game bet win deal sale hub link box "
         "green blue red star sun moon city land world zone point base line").split()
TLDS = ("com com com com net org de fr uk io co info biz xyz online site top ru jp nl "
        "it es pl br in cn eu us ca au ch se be at dk").split()
SUBS = "www api cdn img static ads track m app mail login dl s1 s2 eu us".split()


def valid(name):
    if not name or len(name) > 253 or "." not in name:
        return False
    return all(LABEL.match(l) for l in name.split("."))


def extract(path):
    """Yields the names of one shared list, whatever its format (a small independent
    reader: the benchmark must not depend on the parsers it measures)."""
    base = os.path.basename(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#!;[$@":
                continue
            if base.endswith(".hosts.txt"):
                parts = line.split()
                names = parts[1:] if len(parts) > 1 else []
            elif base.endswith(".adblock.txt"):
                m = re.match(r"^\|\|([^\^/$*]+)\^$", line)
                names = [m.group(1)] if m else []
            elif base.endswith(".dnsmasq.txt"):
                m = re.match(r"^(?:address|server)=/([^/]+)/", line)
                names = [m.group(1)] if m else []
            elif base.endswith(".rpz.txt"):
                parts = line.split()
                if len(parts) >= 3 and parts[-2].upper() == "CNAME":
                    names = [parts[0][2:] if parts[0].startswith("*.") else parts[0]]
                else:
                    names = []
            elif base.endswith(".wildcard.txt"):
                names = [line[2:] if line.startswith("*.") else line]
            else:
                names = [line.split()[0]]
            for n in names:
                n = n.lower().rstrip(".")
                if valid(n):
                    yield n


def builtin_gen(rng):
    """Endless stream of plausible names; deterministic for a given rng."""
    while True:
        k = rng.random()
        w1 = rng.choice(WORDS) if k < 0.5 else "".join(rng.choice(SYLL)
                                                      for _ in range(rng.randint(2, 4)))
        w2 = "".join(rng.choice(SYLL) for _ in range(rng.randint(1, 3)))
        sep = rng.choice(("", "", "-"))
        num = str(rng.randint(1, 999)) if rng.random() < 0.3 else ""
        name = f"{w1}{sep}{w2}{num}.{rng.choice(TLDS)}"
        if rng.random() < 0.25:
            name = f"{rng.choice(SUBS)}.{name}"
        yield name


def generated(args, count, seed):
    """Yields generated names: from --gen CMD (tests/bench/gen-domains.sh) if given,
    else from the built-in generator."""
    if args.gen:
        p = subprocess.Popen(args.gen.split() + [str(count), str(seed)],
                             stdout=subprocess.PIPE, text=True)
        for line in p.stdout:
            n = line.strip().lower().rstrip(".")
            if n:
                yield n
        p.wait()
        if p.returncode:
            sys.exit(f"prepare.py: generator '{args.gen}' failed with status {p.returncode}")
        return
    yield from itertools.islice(builtin_gen(random.Random(seed)), count)


def covered(name, blocked):
    """True if name or one of its parents is in the blocked set (subtree semantics)."""
    labels = name.split(".")
    return any(".".join(labels[i:]) in blocked for i in range(len(labels)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--total", type=int, default=1000000)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--allowed", type=int, default=20000)
    ap.add_argument("--blocked", type=int, default=20000)
    ap.add_argument("--gen", default="")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    shared = set()
    sources = {}
    for fn in sorted(os.listdir(args.data)):
        if fn.startswith("allowlist"):
            continue        # allow rules, not blocks
        before = len(shared)
        shared.update(extract(os.path.join(args.data, fn)))
        sources[fn] = len(shared) - before
    names = sorted(shared)
    if len(names) > args.total:
        names = names[: args.total]
    blocked = set(names)
    need = args.total - len(names)
    # Over-ask the generator a little (some names collide with the lists) and read all
    # of it: stopping early would kill a generator process with a broken pipe.
    for n in generated(args, need + need // 20 + 1000, args.seed):
        if len(names) < args.total and valid(n) and n not in blocked:
            blocked.add(n)
            names.append(n)
    if len(names) != args.total:
        sys.exit(f"prepare.py: generator gave only {len(names)} of {args.total} names")

    # Allowed names: always the built-in generator (its own vocabulary), because
    # gen-domains.sh streams for nearby seeds overlap (splitmix64 seeds step along the
    # same sequence) and its word-pair space is mostly taken by the 1M list. Neither an
    # allowed name nor any parent of it may be on the list.
    allowed, seen = [], set()
    for tries, n in enumerate(builtin_gen(random.Random(args.seed + 1000))):
        if len(allowed) >= args.allowed:
            break
        if tries > args.allowed * 20:
            sys.exit(f"prepare.py: found only {len(allowed)} allowed names not on the list")
        if valid(n) and n not in seen and not covered(n, blocked):
            seen.add(n)
            allowed.append(n)
    probe = f"reload-probe-{args.seed}.bench-probe.com"
    if covered(probe, blocked):
        sys.exit(f"prepare.py: probe name {probe} is already blocked")

    rng = random.Random(args.seed + 2000)
    sample = rng.sample(range(len(names)), args.blocked)
    qblocked = []
    for i, k in enumerate(sample):
        n = names[k]
        if i % 2:
            sub = f"{rng.choice(SUBS)}{rng.randint(0, 99)}.{n}"
            n = sub if len(sub) <= 253 else n
        qblocked.append(n)

    def write(fn, lines):
        with open(os.path.join(args.out, fn), "w") as f:
            f.writelines(lines)

    def lists(suffix, lst, serial):
        write(f"block{suffix}.domains", (f"{n}\n" for n in lst))
        write(f"block{suffix}.adblock", (f"||{n}^\n" for n in lst))
        write(f"block{suffix}.dnsmasq", (f"server=/{n}/\n" for n in lst))
        head = [f"$TTL 3600\n@ SOA localhost. root.localhost. {serial} 3600 600 86400 3600\n",
                "  NS localhost.\n"]
        write(f"block{suffix}.rpz",
              head + [f"{n} CNAME .\n*.{n} CNAME .\n" for n in lst])

    lists("", names, 1)
    lists(".reload", names + [probe], 2)
    rng2 = random.Random(args.seed + 3000)
    data = ["server:\n", '  local-zone: "." static\n']
    for n in allowed + [probe]:
        ip = f"198.18.{rng2.randint(100, 199)}.{rng2.randint(1, 254)}"
        data.append(f'  local-data: "{n}. 3600 IN A {ip}"\n')
    write("internet.conf", data)
    write("q-allowed.txt", (f"{n} A\n" for n in allowed))
    write("q-blocked.txt", (f"{n} A\n" for n in qblocked))
    meta = {"total": len(names), "shared_unique": len(shared), "generated": need,
            "per_source_new": sources, "allowed_queries": len(allowed),
            "blocked_queries": len(qblocked), "probe": probe, "seed": args.seed,
            "generator": args.gen or "builtin (tests/bench/dns/prepare.py)"}
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
