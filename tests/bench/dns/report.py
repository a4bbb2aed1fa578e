#!/usr/bin/env python3
"""Turns the raw measurements of tests/bench/dns/run.sh into dns.json and dns.md.

    report.py --raw RAW.jsonl --meta META.json --out DIR --settings JSON

Every repeated number is the median over rounds; the spread (min..max) is kept in the
JSON so a noisy run shows as noisy. Targets come from issue 4.
"""
import argparse
import datetime
import json
import os
import statistics

PEERS = ["unbound", "unbound+rpz", "dnsmasq", "dnsd+unbound"]
DNSD = "dnsd+unbound"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    xs = [x for x in xs if x is not None]
    return [min(xs), max(xs)] if xs else None


def correct_share(query, runs):
    """Share of dnsperf answers with the rcode this query kind must get (allowed →
    NOERROR, blocked → NXDOMAIN): fast wrong answers (REFUSED from a rate limit,
    SERVFAIL) must not pass for throughput."""
    want = "NOERROR" if query == "allowed" else "NXDOMAIN"
    got = sum(r.get("rcodes", {}).get(want, 0) for r in runs)
    total = sum(sum(r.get("rcodes", {}).values()) for r in runs)
    return got / total if total else None


def aggregate(raw):
    peers = {}
    extra = {}
    for r in raw:
        p = r["peer"]
        if p not in PEERS:
            extra.setdefault(p, {})[r["kind"]] = r
            continue
        d = peers.setdefault(p, {"qps": {}, "latency": {}})
        k = r["kind"]
        if k == "load":
            d["load_s"] = r["load_s"]
            d["rss_after_load_kb"] = r["rss_kb"]
            d["hwm_after_load_kb"] = r["hwm_kb"]
            d["rss_after_load_anon_file_kb"] = [r.get("rss_anon_kb"), r.get("rss_file_kb")]
        elif k == "rss_end":
            d["rss_end_kb"] = r["rss_kb"]
            d["hwm_end_kb"] = r["hwm_kb"]
            d["rss_end_anon_file_kb"] = [r.get("rss_anon_kb"), r.get("rss_file_kb")]
        elif k == "qps":
            d["qps"].setdefault(r["query"], []).append(r)
        elif k == "latency":
            d["latency"].setdefault(r["query"], []).append(r["r"]["all"])
        elif k == "reload":
            rr = r["r"]
            d["reload"] = {
                "reload_s": rr["reload_done_s"],
                "timed_out": rr["reload_timed_out"],
                "command_s": rr["reload_cmd_s"],
                "command_status": rr["reload_cmd_status"],
                "sent": rr["all"]["sent"],
                "lost": rr["all"]["lost"],
                "lost_in_window": rr["reload"]["lost"],
                "window_s": rr["reload"]["duration_s"],
                "p99_steady_us": rr["steady"]["p99_us"],
                "p99_steady_worst_1s_us": rr.get("steady_worst_1s_p99_us"),
                "p99_reload_us": rr["reload"]["p99_us"],
                "max_reload_us": rr["reload"]["max_us"],
                "rcodes": rr["all"]["rcodes"],
                "rss_after_reload_kb": r["rss_kb"],
                "hwm_after_reload_kb": r["hwm_kb"],
            }
        elif k == "set_build":
            d["set_build"] = {kk: v for kk, v in r.items() if kk not in ("peer", "kind")}
        elif k == "missing":
            d["missing"] = r["why"]
    for p, d in peers.items():
        for q, runs in list(d["qps"].items()):
            d["qps"][q] = {"median": med(x["qps"] for x in runs),
                           "spread": spread(x["qps"] for x in runs),
                           "rounds_qps": [x["qps"] for x in runs],
                           "lost": sum(x["lost"] for x in runs),
                           "rounds": len(runs),
                           "rcodes_last": runs[-1].get("rcodes", {}),
                           "correct_share": correct_share(q, runs)}
        for q, runs in list(d["latency"].items()):
            d["latency"][q] = {"p50_us": med(x["p50_us"] for x in runs),
                               "p99_us": med(x["p99_us"] for x in runs),
                               "p99_spread_us": spread(x["p99_us"] for x in runs),
                               "lost": sum(x["lost"] for x in runs),
                               "rate_qps": med(x["rate_qps"] for x in runs),
                               "rcodes_last": runs[-1]["rcodes"]}
    return peers, extra


def mb(kb):
    return None if kb is None else kb / 1024.0


def fmt(x, spec="{:.1f}", none="–"):
    return none if x is None else spec.format(x)


def qps_cell(q):
    """Median with the min..max over rounds, in thousands: '43.9k (43.6–45.2)'."""
    if q.get("median") is None:
        return "–"
    lo, hi = q.get("spread") or (None, None)
    rng = f" ({lo / 1000:.1f}–{hi / 1000:.1f})" if lo is not None else ""
    return f"{q['median'] / 1000:.1f}k{rng}"


def best(d, q):
    sp = d.get("qps", {}).get(q, {}).get("spread")
    return sp[1] if sp else None


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def targets(peers):
    d = peers.get(DNSD, {})
    rows = []

    def row(name, value, ok, shown):
        rows.append({"target": name, "measured": value, "shown": shown,
                     "pass": None if value is None else bool(ok)})

    if "load_s" not in d:
        why = d.get("missing", "not measured")
        for name in ("dnsd RSS with 1M domains <= 24 MB (stretch 16 MB)",
                     "set build <= 2 s", "load <= 0.3 s",
                     "reload under load: 0 lost queries",
                     "reload: p99 during reload <= 2x steady state",
                     "allowed qps dnsd+unbound >= 1.0x bare unbound",
                     "blocked qps dnsd+unbound >= 1.5x unbound+RPZ"):
            rows.append({"target": name, "measured": None, "shown": why, "pass": None})
        return rows
    rss = mb(d.get("rss_end_kb") or d.get("rss_after_load_kb"))
    row("dnsd RSS with 1M domains <= 24 MB (stretch 16 MB)", rss, rss <= 24,
        f"{rss:.1f} MB" + (" (stretch met)" if rss <= 16 else ""))
    sb = d.get("set_build", {}).get("seconds")
    row("set build <= 2 s", sb, sb is not None and sb <= 2, fmt(sb, "{:.2f} s"))
    row("load <= 0.3 s", d["load_s"], d["load_s"] <= 0.3, f"{d['load_s']:.3f} s")
    rl = d.get("reload")
    if rl:
        row("reload under load: 0 lost queries", rl["lost"], rl["lost"] == 0,
            f"{rl['lost']} of {rl['sent']}")
        rr = ratio(rl["p99_reload_us"], rl["p99_steady_us"])
        row("reload: p99 during reload <= 2x steady state", rr, rr is not None and rr <= 2,
            f"{fmt(rl['p99_reload_us'], '{:.0f}')} vs {fmt(rl['p99_steady_us'], '{:.0f}')} µs = "
            f"{fmt(rr, '{:.2f}')}x (worst steady second: {fmt(rl.get('p99_steady_worst_1s_us'), '{:.0f}')} µs)")
    qa = ratio(d["qps"].get("allowed", {}).get("median"),
               peers.get("unbound", {}).get("qps", {}).get("allowed", {}).get("median"))
    row("allowed qps dnsd+unbound >= 1.0x bare unbound", qa, qa is not None and qa >= 1.0,
        fmt(qa, "{:.2f}x"))
    qb = ratio(d["qps"].get("blocked", {}).get("median"),
               peers.get("unbound+rpz", {}).get("qps", {}).get("blocked", {}).get("median"))
    row("blocked qps dnsd+unbound >= 1.5x unbound+RPZ", qb, qb is not None and qb >= 1.5,
        fmt(qb, "{:.2f}x"))
    return rows


def markdown(res):
    peers = res["peers"]
    s = res["settings"]
    m = res["inputs"]
    L = []
    L.append(f"# DNS benchmark — {res['date']}\n")
    L.append(f"Blocklist: {m['total']:,} names ({m['shared_unique']:,} from the shared lists, "
             f"{m['generated']:,} generated by {m['generator']}, seed {m['seed']}); "
             f"every entry blocks its whole subtree for every peer. Queries: "
             f"{m['allowed_queries']:,} allowed names, {m['blocked_queries']:,} blocked "
             f"names (half of them subdomains of list entries). All on loopback, UDP.\n")
    L.append(f"dnsperf {s['dnsperf']} -l {s['dnsperf_seconds']} -c {s['clients']} "
             f"-q {s['outstanding']} -T 1, median of {s['repeats']} rounds; latency "
             f"percentiles from dnsload at a fixed {s['latency_qps']} qps. unbound "
             f"{s['unbound']} (1 thread), dnsmasq {s['dnsmasq']}. "
             + (f"Run at nice {s['nice']}. " if s.get("nice") else "") +
             f"{s['nproc']} cores, "
             f"load average {s['loadavg_start']} → {s['loadavg_end']} (the machine is "
             f"shared: qps show median (min–max) over the rounds; compare peers within this "
             f"run only).\n")
    L.append("| peer | load (s) | RSS after load (MB) | RSS end / peak (MB) | qps allowed | "
             "qps blocked | allowed p50 / p99 (µs) | blocked p50 / p99 (µs) | reload (s) | "
             "lost in reload | p99 steady (worst 1 s) → reload (µs) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in PEERS:
        d = peers.get(p)
        if not d or "load_s" not in d:
            why = (d or {}).get("missing", "not measured")
            L.append(f"| {p} | {why} |" + " |" * 10)
            continue
        qa = d["qps"].get("allowed", {})
        qb = d["qps"].get("blocked", {})
        la = d["latency"].get("allowed", {})
        lb = d["latency"].get("blocked", {})
        rl = d.get("reload")
        if rl:
            rel = "timed out" if rl["timed_out"] else fmt(rl["reload_s"], "{:.3f}")
            lost = f"{rl['lost']} / {rl['sent']}"
            p99 = (f"{fmt(rl['p99_steady_us'], '{:.0f}')} ({fmt(rl['p99_steady_worst_1s_us'], '{:.0f}')})"
                   f" → {fmt(rl['p99_reload_us'], '{:.0f}')}")
        else:
            rel, lost, p99 = "n/a", "n/a", "n/a"
        L.append(f"| {p} | {d['load_s']:.2f} | {fmt(mb(d.get('rss_after_load_kb')))} | "
                 f"{fmt(mb(d.get('rss_end_kb')))} / {fmt(mb(d.get('hwm_end_kb')))} | "
                 f"{qps_cell(qa)} | {qps_cell(qb)} | "
                 f"{fmt(la.get('p50_us'), '{:.0f}')} / {fmt(la.get('p99_us'), '{:.0f}')} | "
                 f"{fmt(lb.get('p50_us'), '{:.0f}')} / {fmt(lb.get('p99_us'), '{:.0f}')} | "
                 f"{rel} | {lost} | {p99} |")
    for p in PEERS:
        d = peers.get(p, {})
        for q, v in d.get("qps", {}).items():
            c = v.get("correct_share")
            if c is not None and c < 0.995:
                L.append(f"\n**Warning:** {p}: only {c * 100:.1f}% of the {q}-name answers "
                         f"had the expected rcode ({v['rcodes_last']}); its qps is suspect.")
    ub = res.get("unbound_behind_dnsd_rss_kb")
    if ub:
        L.append(f"\ndnsd+unbound: RSS is dnsd's alone; the unbound it forwards to is the "
                 f"bare-unbound peer ({mb(ub):.1f} MB).")
    d = peers.get(DNSD, {})
    if "load_s" in d:
        sb = d.get("set_build", {})
        af = d.get("rss_end_anon_file_kb") or [None, None]
        if af[0] is not None:
            L.append(f"\ndnsd RSS at the end of the rounds: {mb(af[0]):.1f} MB anonymous + "
                     f"{mb(af[1]):.1f} MB file-backed (pages of the mmap'd set that lookups "
                     f"touched: {m['blocked_queries']:,} random blocked names touch nearly "
                     f"every page of the lookup table; the names section stays on disk).")
        L.append(f"\n`otasukectl set build` of the {m['total']:,}-name list: {fmt(sb.get('seconds'), '{:.2f}')} s, "
                 f"peak RSS {fmt(mb(sb.get('max_rss_kb')))} MB, set file "
                 f"{fmt((sb.get('set_bytes') or 0) / 1048576.0)} MB; dnsd load "
                 f"(start → first blocked answer) {d['load_s']:.3f} s.")
        L.append("\nRatios of medians; in brackets the ratio of the best rounds (background "
                 "load only ever lowers qps, so best-vs-best is the less noisy comparison).\n")
        L.append("| dnsd+unbound vs | RSS | qps allowed | qps blocked |")
        L.append("|---|---:|---:|---:|")
        for p in PEERS[:-1]:
            o = peers.get(p)
            if not o or "load_s" not in o:
                continue
            r_rss = ratio(d.get("rss_end_kb"), o.get("rss_end_kb"))
            r_a = ratio(d["qps"].get("allowed", {}).get("median"),
                        o["qps"].get("allowed", {}).get("median"))
            r_b = ratio(d["qps"].get("blocked", {}).get("median"),
                        o["qps"].get("blocked", {}).get("median"))
            b_a = ratio(best(d, "allowed"), best(o, "allowed"))
            b_b = ratio(best(d, "blocked"), best(o, "blocked"))
            L.append(f"| {p} | {fmt(r_rss, '{:.3f}x')} | {fmt(r_a, '{:.2f}x')} "
                     f"({fmt(b_a, '{:.2f}x')}) | {fmt(r_b, '{:.2f}x')} ({fmt(b_b, '{:.2f}x')}) |")
    L.append("\n| target (issue 4) | measured | result |")
    L.append("|---|---|---|")
    for t in res["targets"]:
        verdict = {True: "pass", False: "**FAIL**", None: "not measured"}[t["pass"]]
        L.append(f"| {t['target']} | {t['shown']} | {verdict} |")
    h = res.get("harness_noop_reload")
    if h:
        L.append(f"\nHarness check (the reload run against dnsd with a no-op command instead of "
                 f"a reload): p99 {fmt(h['steady']['p99_us'], '{:.0f}')} → "
                 f"{fmt(h['reload']['p99_us'], '{:.0f}')} µs (worst steady second "
                 f"{fmt(h.get('steady_worst_1s_p99_us'), '{:.0f}')} µs), {h['all']['lost']} lost — what the "
                 f"load generator and the busy machine alone add to the reload window.")
    L.append("\nReload: the new list (same names plus a probe name) is put in place under a "
             f"steady {s['latency_qps']} qps mixed load; reload time = trigger → first "
             "NXDOMAIN for the probe. unbound+rpz: `unbound-control auth_zone_reload`; "
             "dnsmasq: SIGHUP re-reads its --servers-file; dnsd: SIGHUP with a set built "
             "beforehand. Lost = no answer within 5 s.")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--settings", required=True)
    a = ap.parse_args()
    with open(a.raw) as f:
        raw = [json.loads(l) for l in f if l.strip()]
    with open(a.meta) as f:
        meta = json.load(f)
    peers, extra = aggregate(raw)
    res = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "settings": json.loads(a.settings), "inputs": meta, "peers": peers}
    ub = extra.get("unbound-behind-dnsd", {}).get("rss_end")
    if ub:
        res["unbound_behind_dnsd_rss_kb"] = ub["rss_kb"]
    h = extra.get("harness-noop-reload", {}).get("reload")
    if h:
        res["harness_noop_reload"] = h["r"]
    res["targets"] = targets(peers)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "dns.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    with open(os.path.join(a.out, "dns.md"), "w") as f:
        f.write(markdown(res))


if __name__ == "__main__":
    main()
