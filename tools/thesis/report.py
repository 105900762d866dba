#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The tables and charts of `make thesis` from the guest's THESIS: lines.

    report.py THESIS.RAW OUTDIR

THESIS.RAW holds the "THESIS: ..." console lines of selftests/thesis.sh
(tools/build/thesis.sh greps them). Writes into OUTDIR:

  calibration.csv  step, uplink, tbf rate, measured tx rate, %, verdict, CPU %
  runs.csv         one row per variant x workload x configuration: makespan,
                   transfers, payload, goodput and its share of 21 Mbit/s,
                   per uplink tx bytes and kbit/s, tbf drops, the sources'
                   TCP counters (retransmissions, reordering), guest CPU %
  links.csv        one row per variant x workload x configuration x uplink
  transfers.csv    one row per transfer
  summary.md       the tables
  charts.gp        the gnuplot script (run in OUTDIR) and its *.dat files

Standard library only. Goodput is payload bytes over the makespan (first
transfer start to last transfer end, both sources); an uplink's bandwidth
is its tx bytes (whole frames, as tbf meters them) over the same makespan,
as the thesis's figures 6.1-6.11 show it.
"""
import csv
import os
import sys
from collections import OrderedDict, defaultdict

LINK_MBPS = 21.0  # 1 + 10 + 10 Mbit/s of tbf
UPLINKS = ("up1", "up2", "up3")
REORDER_KEYS = ("TCPSACKReorder", "TCPTSReorder", "TCPRenoReorder")
SIZE_ORDER = ["8k", "16k", "64k", "128k", "512k", "1m", "2m", "4m", "8m", "16m"]
SIZE_TITLE = {"8k": "8KB", "16k": "16KB", "64k": "64KB", "128k": "128KB", "512k": "512KB",
              "1m": "1MB", "2m": "2MB", "4m": "4MB", "8m": "8MB", "16m": "16MB"}
# The thesis's figure numbers, for the chart titles.
FIGURE = {s: "6.%d" % (i + 1) for i, s in enumerate(SIZE_ORDER)}
FIGURE["mixed"] = "6.11"
# A run whose guest CPU was this busy may have been CPU-bound: flagged.
CPU_BOUND_PCT = 90


def parse(path):
    meta, calib, runs, xfers = {}, [], [], []
    with open(path, errors="replace") as f:
        for line in f:
            w = line.split()
            if len(w) < 2 or w[0] != "THESIS:":
                continue
            kind, rest = w[1], w[2:]
            if kind == "meta":
                meta.update(kv.split("=", 1) for kv in rest if "=" in kv)
            elif kind == "calib" and len(rest) >= 6:
                calib.append({"step": rest[0], "uplink": rest[1], "rate_bps": int(rest[2]),
                              "tx_bps": int(rest[3]), "pct": float(rest[4]), "verdict": rest[5],
                              "cpu_pct": rest[6] if len(rest) > 6 else ""})
            elif kind == "run" and len(rest) >= 3:
                r = {"variant": rest[0], "workload": rest[1], "config": rest[2]}
                for kv in rest[3:]:
                    if "=" in kv:
                        k, v = kv.split("=", 1)
                        r[k] = v
                runs.append(r)
            elif kind == "xfer" and len(rest) >= 10:
                xfers.append({"variant": rest[0], "workload": rest[1], "config": rest[2],
                              "src": rest[3], "dst": rest[4], "sport": rest[5],
                              "size": int(rest[6]), "start": float(rest[7]),
                              "seconds": float(rest[8]), "status": rest[9]})
    return meta, calib, runs, xfers


def num(r, k):
    try:
        return int(r.get(k, 0))
    except ValueError:
        return 0


def derive(r):
    """Adds the figures computed from a run line's counters."""
    ms = num(r, "makespan_ms")
    secs = ms / 1000.0 if ms > 0 else 0.0
    r["makespan_s"] = secs
    r["goodput_mbps"] = num(r, "payload") * 8 / secs / 1e6 if secs else 0.0
    r["frac_21"] = r["goodput_mbps"] / LINK_MBPS
    for u in UPLINKS:
        r["kbps_" + u] = num(r, "txb_" + u) * 8 / secs / 1000 if secs else 0.0
    r["reorder"] = sum(num(r, k) for k in REORDER_KEYS)
    r["cpu_bound"] = num(r, "cpu_pct") >= CPU_BOUND_PCT
    return r


def order_key(configs):
    pos = {c: i for i, c in enumerate(configs)}
    return lambda c: pos.get(c, len(pos))


def write_csvs(out, calib, runs, xfers):
    with open(os.path.join(out, "calibration.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "uplink", "tbf_rate_bps", "tx_bps", "pct", "verdict", "guest_cpu_pct"])
        for c in calib:
            w.writerow([c["step"], c["uplink"], c["rate_bps"], c["tx_bps"], c["pct"], c["verdict"],
                        c["cpu_pct"]])
    cols = ["variant", "workload", "config", "makespan_s", "transfers", "failed", "payload",
            "goodput_mbps", "frac_21"]
    cols += ["txb_" + u for u in UPLINKS] + ["txp_" + u for u in UPLINKS]
    cols += ["kbps_" + u for u in UPLINKS] + ["drops_" + u for u in UPLINKS]
    cols += ["RetransSegs", "OutSegs"] + list(REORDER_KEYS) + ["reorder", "TCPDSACKRecv", "cpu_pct",
             "wall_ms"]
    with open(os.path.join(out, "runs.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in runs:
            w.writerow([fmt_csv(r.get(c, "")) for c in cols])
    with open(os.path.join(out, "links.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["variant", "workload", "config", "uplink", "tx_bytes", "tx_packets",
                    "tbf_drops", "seconds", "kbps"])
        for r in runs:
            for u in UPLINKS:
                w.writerow([r["variant"], r["workload"], r["config"], u, num(r, "txb_" + u),
                            num(r, "txp_" + u), num(r, "drops_" + u), fmt_csv(r["makespan_s"]),
                            fmt_csv(r["kbps_" + u])])
    with open(os.path.join(out, "transfers.csv"), "w", newline="") as f:
        w = csv.writer(f)
        keys = ["variant", "workload", "config", "src", "dst", "sport", "size", "start",
                "seconds", "status"]
        w.writerow(keys)
        for x in xfers:
            w.writerow([x[k] for k in keys])


def fmt_csv(v):
    return "%.4f" % v if isinstance(v, float) else v


def mean_times(xfers, variant="base"):
    """{(size word, config): (mean seconds, n)} over the ok transfers of the
    per-size workloads."""
    acc = defaultdict(list)
    for x in xfers:
        if x["variant"] == variant and x["workload"] != "mixed" and x["status"] == "ok":
            acc[(x["workload"], x["config"])].append(x["seconds"])
    return {k: (sum(v) / len(v), len(v)) for k, v in acc.items()}


def summary(out, meta, calib, runs, xfers, configs):
    L = []
    L.append("# make thesis: the thesis's experiment on mpbal\n")
    if meta:
        L.append("Guest: kernel %s, %s vCPUs; strategies listed by the module: %s; "
                 "files per stream: %s; bw_interval_ms/bw_ewma_log %s; MTU %s; "
                 "delays of the delay variant: %s.\n" % (
                     meta.get("kernel", "?"), meta.get("cpus", "?"),
                     meta.get("strategies", "?").replace(",", " "), meta.get("counts", "?"),
                     meta.get("bw", "?"), meta.get("mtu", "?"),
                     meta.get("delays", "?").replace(",", " / ")))
    if calib:
        L.append("## Link-bound calibration\n")
        L.append("Bulk TCP (two connections) pinned to each uplink alone, then to each of the "
                 "three at once; tx rate of the uplink (whole frames, what tbf meters) over 4 s "
                 "after a 2 s warm-up; a step below 95% is tried once more (-retry).\n")
        L.append("| step | uplink | tbf rate | measured | % | verdict | guest CPU % |")
        L.append("|---|---|---:|---:|---:|---|---:|")
        for c in calib:
            L.append("| %s | %s | %.1f Mbit/s | %.3f Mbit/s | %.1f | %s | %s |" % (
                c["step"], c["uplink"], c["rate_bps"] / 1e6, c["tx_bps"] / 1e6, c["pct"],
                c["verdict"], c["cpu_pct"]))
        L.append("")
    groups = OrderedDict()
    for r in runs:
        groups.setdefault((r["variant"], r["workload"]), []).append(r)
    key = order_key(configs)
    wl_key = {w: i for i, w in enumerate(SIZE_ORDER + ["mixed"])}
    L.append("## Runs\n")
    L.append("Makespan: first transfer start to last transfer end over both sources. Goodput: "
             "payload over the makespan, and its share of the 21 Mbit/s the three uplinks carry. "
             "MB: bytes each uplink sent (frames). Retrans: the sources' RetransSegs; "
             "reorder: their TCPSACKReorder + TCPTSReorder + TCPRenoReorder. "
             "A guest CPU of %d%% or more marks a run that may have been CPU-bound (*). "
             "A short run can exceed 100%%: the tbfs' full buckets (16+64+64 kB) leave at "
             "once.\n" % CPU_BOUND_PCT)
    for (var, wl) in sorted(groups, key=lambda g: (g[0] != "base", wl_key.get(g[1], 99))):
        rs = sorted(groups[(var, wl)], key=lambda r: key(r["config"]))
        title = "mixed (16 concurrent transfers, 31.8 MB)" if wl == "mixed" else \
            "file size %s (%d transfers, %.1f MB)" % (
                SIZE_TITLE.get(wl, wl), num(rs[0], "transfers"), num(rs[0], "planned") / 1e6)
        if var == "delay":
            title += ", paths delayed %s ms" % meta.get("delays", "5/20/40").replace(
                "ms", "").replace(",", "/")
        L.append("### %s\n" % title)
        L.append("| config | makespan s | goodput Mbit/s | of 21 Mbit/s | MB up1 | MB up2 | MB up3 "
                 "| kbit/s up1/up2/up3 | failed | retrans | reorder | guest CPU % |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
        for r in rs:
            L.append("| %s | %.2f | %.2f | %.0f%% | %.2f | %.2f | %.2f | %.0f / %.0f / %.0f | %d | %d "
                     "| %d | %s%s |" % (
                         r["config"], r["makespan_s"], r["goodput_mbps"], 100 * r["frac_21"],
                         num(r, "txb_up1") / 1e6, num(r, "txb_up2") / 1e6,
                         num(r, "txb_up3") / 1e6, r["kbps_up1"], r["kbps_up2"], r["kbps_up3"],
                         num(r, "failed"), num(r, "RetransSegs"), r["reorder"],
                         r.get("cpu_pct", "?"), " *" if r["cpu_bound"] else ""))
        L.append("")
    mt = mean_times(xfers)
    sizes = [s for s in SIZE_ORDER if any(k[0] == s for k in mt)]
    if sizes:
        L.append("## Mean transfer time per file size (seconds; figure 6.12)\n")
        cfgs = sorted({k[1] for k in mt}, key=key)
        L.append("| size | " + " | ".join(cfgs) + " |")
        L.append("|---|" + "---:|" * len(cfgs))
        for s in sizes:
            L.append("| %s | " % SIZE_TITLE[s] + " | ".join(
                "%.3f" % mt[(s, c)][0] if (s, c) in mt else "-" for c in cfgs) + " |")
        L.append("")
    delay = {r["config"]: r for r in runs if r["variant"] == "delay" and r["workload"] == "mixed"}
    flowlets = [c for c in ("flowlet", "flowlet-nowait") if c in delay]
    if "packet" in delay and flowlets:
        p = delay["packet"]["reorder"]
        L.append("## Flowlet target (delay variant, mixed)\n")
        L.append("Target: packet reorders and flowlet <= 10% of it "
                 "(flowlet-nowait: flowlet with net.mpbal.flowlet_queue_wait=0).\n")
        for c in flowlets:
            fl = delay[c]["reorder"]
            ok = p > 0 and fl * 10 <= p
            L.append("* packet: %d reordering events, %s: %d (%s of packet's): **%s**." % (
                p, c, fl, "%.1f%%" % (100.0 * fl / p) if p else "-", "met" if ok else "MISSED"))
        L.append("")
    bound = [r for r in runs if r["cpu_bound"]]
    if bound:
        L.append("Runs with guest CPU >= %d%% (may be CPU-bound, not link-bound): %s.\n" % (
            CPU_BOUND_PCT, ", ".join("%s %s %s (%s%%)" % (r["variant"], r["workload"],
                                                          r["config"], r.get("cpu_pct"))
                                     for r in bound)))
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(L))


def gp_quote(s):
    return '"%s"' % s.replace('"', "'")


def charts(out, meta, runs, xfers, configs):
    """Writes the .dat files and charts.gp (run by the caller)."""
    key = order_key(configs)
    G = ['set terminal pngcairo size 900,520 font "sans,10"',
         "set style data histograms",
         "set style histogram clustered gap 1",
         "set style fill solid 0.85 border -1",
         "set boxwidth 0.9",
         "set grid ytics",
         "set key top left",
         "set xtics nomirror",
         "set yrange [0:*]",
         "set offsets 0, 0, graph 0.06, 0"]
    groups = OrderedDict()
    for r in runs:
        groups.setdefault((r["variant"], r["workload"]), []).append(r)
    for (var, wl), rs in groups.items():
        rs = sorted(rs, key=lambda r: key(r["config"]))
        name = "bw_%s%s" % ("" if var == "base" else var + "_", wl)
        with open(os.path.join(out, name + ".dat"), "w") as f:
            f.write("# config kbps_up1 kbps_up2 kbps_up3\n")
            for r in rs:
                f.write("%s %.1f %.1f %.1f\n" % (r["config"], r["kbps_up1"], r["kbps_up2"],
                                                  r["kbps_up3"]))
        what = "Mixed File Sizes" if wl == "mixed" else "File Size %s" % SIZE_TITLE.get(wl, wl)
        fig = FIGURE.get(wl, "")
        title = "Bandwidth usage per uplink, %s%s" % (what, " (thesis figure %s)" % fig
                                                       if fig and var == "base" else "")
        if var == "delay":
            title += ", paths delayed %s" % meta.get("delays", "").replace(",", "/")
        G += ["set output %s" % gp_quote(name + ".png"),
              "set title %s" % gp_quote(title),
              'set ylabel "Bandwidth utilization (kbit/s)"',
              'set xlabel "Channel balancing strategy"',
              "plot %s using 2:xtic(1) title 'up1 (1 Mbit/s)', '' using 3 title 'up2 (10 Mbit/s)', "
              "'' using 4 title 'up3 (10 Mbit/s)'" % gp_quote(name + ".dat")]
    mt = mean_times(xfers)
    sizes = [s for s in SIZE_ORDER if any(k[0] == s for k in mt)]
    if sizes:
        cfgs = sorted({k[1] for k in mt}, key=key)
        with open(os.path.join(out, "transfer_times.dat"), "w") as f:
            f.write("# size " + " ".join(cfgs) + "\n")
            for s in sizes:
                f.write(SIZE_TITLE[s] + " " + " ".join(
                    "%.4f" % mt[(s, c)][0] if (s, c) in mt else "NaN" for c in cfgs) + "\n")
        plots = ", ".join("%s using %d%s title %s" % (
            gp_quote("transfer_times.dat") if i == 0 else "''", i + 2,
            ":xtic(1)" if i == 0 else "", gp_quote(c)) for i, c in enumerate(cfgs))
        G += ["set output 'transfer_times.png'",
              "set title 'Mean transfer time per file size (thesis figure 6.12)'",
              "set ylabel 'Transfer time (s), log scale'",
              "set xlabel 'File size'",
              "set logscale y",
              "set yrange [*:*]",
              "plot " + plots,
              "unset logscale y",
              "set yrange [0:*]"]
    mixed = {}
    for r in runs:
        if r["workload"] == "mixed":
            mixed.setdefault(r["config"], {})[r["variant"]] = r
    if any("delay" in v for v in mixed.values()):
        cfgs = sorted((c for c in mixed if "delay" in mixed[c]), key=key)
        with open(os.path.join(out, "reorder_delay.dat"), "w") as f:
            f.write("# config reorder_delay retrans_delay reorder_base retrans_base\n")
            for c in cfgs:
                d, b = mixed[c]["delay"], mixed[c].get("base")
                f.write("%s %d %d %s %s\n" % (c, d["reorder"], num(d, "RetransSegs"),
                                              b["reorder"] if b else "NaN",
                                              num(b, "RetransSegs") if b else "NaN"))
        # gnuplot rejects a histogram column without a valid point.
        base = any("base" in mixed[c] for c in cfgs)
        delays = meta.get("delays", "").replace(",", "/")
        G += ["set terminal pngcairo size 1100,520 font 'sans,10'",
              "set output 'reorder_delay.png'",
              "set multiplot layout 1,2 title %s" % gp_quote(
                  "Mixed workload, paths delayed %s: what the sources' TCP saw" % delays),
              "set xlabel 'Configuration'"]
        for col, what in ((2, "Reordering events (TCPSACK/TS/RenoReorder)"),
                          (3, "Retransmitted segments (RetransSegs)")):
            G += ["set title %s" % gp_quote(what),
                  "set ylabel 'Events (both sources)'",
                  "plot 'reorder_delay.dat' using %d:xtic(1) title 'paths delayed'%s" % (
                      col, ", '' using %d title 'no delay'" % (col + 2) if base else "")]
        G += ["unset multiplot",
              'set terminal pngcairo size 900,520 font "sans,10"']
    if mixed:
        cfgs = sorted(mixed, key=key)
        with open(os.path.join(out, "makespan_mixed.dat"), "w") as f:
            f.write("# config makespan_base makespan_delay\n")
            for c in cfgs:
                b, d = mixed[c].get("base"), mixed[c].get("delay")
                f.write("%s %s %s\n" % (c, "%.2f" % b["makespan_s"] if b else "NaN",
                                        "%.2f" % d["makespan_s"] if d else "NaN"))
        cols = [(2, "no delay")] if any("base" in v for v in mixed.values()) else []
        if any("delay" in v for v in mixed.values()):
            cols.append((3, "paths delayed %s" % meta.get("delays", "").replace(",", "/")))
        G += ["set output 'makespan_mixed.png'",
              "set title 'Mixed workload: makespan (a perfect balancer over 21 Mbit/s: 12.1 s)'",
              "set ylabel 'Makespan (s)'",
              "set xlabel 'Configuration'",
              "plot " + ", ".join("%s using %d%s title %s" % (
                  "'makespan_mixed.dat'" if i == 0 else "''", col, ":xtic(1)" if i == 0 else "",
                  gp_quote(t)) for i, (col, t) in enumerate(cols))]
    with open(os.path.join(out, "charts.gp"), "w") as f:
        f.write("\n".join(G) + "\n")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: report.py THESIS.RAW OUTDIR")
    meta, calib, runs, xfers = parse(sys.argv[1])
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    runs = [derive(r) for r in runs]
    configs = meta.get("configs", "").split(",") if meta.get("configs") else []
    for c in meta.get("delay_configs", "").split(","):
        if c and c not in configs:
            configs.append(c)
    write_csvs(out, calib, runs, xfers)
    summary(out, meta, calib, runs, xfers, configs)
    charts(out, meta, runs, xfers, configs)


if __name__ == "__main__":
    main()
