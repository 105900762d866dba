#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Where a configuration's guest instructions go, per symbol, against a base.

  tbprofile.py [--helpers DIR] SYSTEM_MAP BASE_LOG BASE_TBC LOG TBC CONFIG

BASE and the other run are two guest runs of selftests/bench.sh with the
extra "ksyms" (the module's /proc/kallsyms lines, "KSYM: ..." in the log)
under the TB-counting plugin (tools/bench/tbcount.c: TBC has lines "VADDR
N_INSNS EXECS"). Each TB's instructions (N_INSNS * EXECS, the whole block
even when an execution left it early) go to the symbol its first
instruction is in: the bench kernel's System.map for the kernel, the run's
own KSYM lines for mpbal. Prints the per-symbol difference of the two runs
per forwarded packet of CONFIG (its BENCH line in LOG), grouped: mpbal's
Rust functions, its C helpers (the functions of DIR/*.c, default
src/helpers: the FFI calls), the percpu BH sections, the kernel functions
that changed by at least 1 instruction per packet, the rest, and totals.
Rust names are demangled with llvm-cxxfilt-14 when it is installed.
Python 3 standard library only.
"""
import argparse
import bisect
import glob
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict

MPBAL = " [mpbal]"
USER = "[user]"
OTHER = "[kernel, outside any symbol]"
BH = ("mpbal_percpu_get_bh", "mpbal_percpu_put_bh")
MODULE_SPAN = 0x10000  # how far past its last text symbol mpbal's code may go
MPBAL_MIN = 0.1  # mpbal lines smaller than this (instr/pkt) are summed up
KERNEL_MIN = 1.0  # kernel functions changed by less are summed up


def c_functions(helpers):
    """Names of the functions defined in helpers/*.c (a return type, then
    the name at the start of a line: no macro invocation matches)."""
    names = set()
    pat = re.compile(r"^(?:[A-Za-z_]\w*[\s*]+)+\**([A-Za-z_]\w*)\s*\(")
    for path in sorted(glob.glob(os.path.join(helpers, "*.c"))):
        with open(path, errors="replace") as f:
            for line in f:
                m = pat.match(line)
                if m:
                    names.add(m.group(1))
    return names


def kernel_syms(sysmap):
    syms, byname = [], {}
    with open(sysmap) as f:
        for line in f:
            a, t, n = line.split()[:3]
            a = int(a, 16)
            byname.setdefault(n, a)
            if t in "tTwW":
                syms.append((a, n))
    text = [(byname.get(lo), byname.get(hi))
            for lo, hi in (("_stext", "_etext"), ("_sinittext", "_einittext"))]
    return syms, [r for r in text if None not in r]


def module_syms(log):
    """The module's text symbols from the KSYM lines of LOG. A module
    loaded at another address later in the same run would make the counts
    ambiguous: that is an error."""
    loads, cur = [], None
    with open(log, errors="replace") as f:
        for line in f:
            line = line.replace("\r", "").strip()
            if not line.startswith("KSYM: "):
                cur = None
                continue
            if cur is None:
                cur = {}
                loads.append(cur)
            p = line[6:].split()
            if len(p) >= 3 and p[1] in "tTwW":
                cur[int(p[0], 16)] = p[2]
    syms, where = {}, {}
    for d in loads:
        for addr, name in d.items():
            if where.setdefault(name, addr) != addr or syms.setdefault(addr, name) != name:
                sys.exit("tbprofile: %s: the module was loaded at different addresses" % log)
    if not syms:
        sys.exit("tbprofile: no KSYM lines in %s (bench.sh extra \"ksyms\")" % log)
    return sorted(syms.items())


def bench_lines(log):
    res = {}
    with open(log, errors="replace") as f:
        for line in f:
            line = line.replace("\r", "")
            if line.startswith("BENCH: "):
                p = line.split()
                res[p[1]] = (float(p[2]), float(p[3]), int(p[5]))
    return res


def profile(ksyms, text, log, tbc):
    """Instructions per symbol of one run (module symbols carry MPBAL)."""
    msyms = module_syms(log)
    mlo, mhi = msyms[0][0], msyms[-1][0] + MODULE_SPAN
    syms = sorted(ksyms + [(a, n + MPBAL) for a, n in msyms])
    addrs = [a for a, _ in syms]
    ins = defaultdict(int)
    with open(tbc) as f:
        for line in f:
            va, n, e = line.split()
            va = int(va, 16)
            if va < 0xffff800000000000:
                s = USER
            else:
                i = bisect.bisect_right(addrs, va) - 1
                s = syms[i][1] if i >= 0 else OTHER
                if s.endswith(MPBAL):
                    if not mlo <= va < mhi:
                        s = OTHER
                elif not any(lo <= va < hi for lo, hi in text):
                    s = OTHER
            ins[s] += int(n) * int(e)
    return ins


def demangle(names):
    names = list(names)
    tool = shutil.which("llvm-cxxfilt-14")
    if tool and names:
        try:
            out = subprocess.run([tool], input="\n".join(names) + "\n", capture_output=True,
                                 text=True, check=True).stdout.split("\n")
            if len(out) >= len(names):
                return dict(zip(names, out))
        except (OSError, subprocess.CalledProcessError):
            pass
    return {n: n for n in names}


def shorten(name):
    """policy::hooks::prerouting::{closure#0} for mpbal_main's, trait
    paths down to the trait's name, no crate hashes."""
    name = re.sub(r"\[[0-9a-f]{6,}\]", "", name)  # v0 crate disambiguators
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)  # legacy mangling's hash
    name = name.replace("mpbal_main::", "")
    name = re.sub(r" as (?:[\w]+::)+(\w+)", r" as \1", name)
    return name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--helpers", default="src/helpers")
    ap.add_argument("sysmap")
    ap.add_argument("base_log")
    ap.add_argument("base_tbc")
    ap.add_argument("log")
    ap.add_argument("tbc")
    ap.add_argument("config")
    a = ap.parse_args()

    ksyms, text = kernel_syms(a.sysmap)
    base = profile(ksyms, text, a.base_log, a.base_tbc)
    run = profile(ksyms, text, a.log, a.tbc)
    bench, bbench = bench_lines(a.log), bench_lines(a.base_log)
    if a.config not in bench:
        sys.exit("tbprofile: no BENCH line for %s in %s" % (a.config, a.log))
    pps, secs, fwd = bench[a.config]
    fwd = fwd or round(pps * secs)  # mpbal's count, else the uplinks'
    if fwd <= 0:
        sys.exit("tbprofile: no packets forwarded in %s" % a.config)
    d = {k: (run.get(k, 0) - base.get(k, 0)) / fwd for k in set(run) | set(base)}

    cfuncs = c_functions(a.helpers)
    mods = [k for k in d if k.endswith(MPBAL)]
    raw = {k: k[:-len(MPBAL)] for k in mods}
    dm = demangle(n for n in raw.values() if n not in cfuncs)
    groups = {"rust": defaultdict(float), "c": defaultdict(float), "bh": defaultdict(float)}
    for k in mods:
        n = raw[k]
        g = "bh" if n in BH else "c" if n in cfuncs else "rust"
        groups[g][n if g != "rust" else shorten(dm[n])] += d[k]
    kern = {k: v for k, v in d.items() if not k.endswith(MPBAL) and k not in (USER, OTHER)}

    w = 72
    line = lambda label, v: print("  %-*s %+9.1f" % (w, label, v))
    total = lambda label, v: print("%-*s %+9.1f" % (w + 2, label, v))

    def group(title, rows, limit, rest):
        print(title)
        big = sorted((k for k in rows if abs(rows[k]) >= limit), key=lambda k: -abs(rows[k]))
        for k in big:
            line(k if len(k) <= w else k[:w - 3] + "...", rows[k])
        small = [k for k in rows if k not in big]
        if small:
            line("(%d more, each below %g)" % (len(small), limit), sum(rows[k] for k in small))
        s = sum(rows.values())
        total("  = " + rest, s)
        return s

    print("%-*s %9s" % (w + 2, "%s vs loaded, per forwarded packet (%d packets)" % (a.config, fwd),
                         "instr/pkt"))
    m = group("mpbal, Rust (per function)", groups["rust"], MPBAL_MIN, "Rust")
    m += group("mpbal, C helpers (src/helpers/*.c: the FFI calls)", groups["c"], MPBAL_MIN,
               "C helpers")
    m += group("mpbal, BH sections (percpu get/put, local_bh_disable/enable)", groups["bh"],
               MPBAL_MIN, "BH sections")
    total("= mpbal", m)
    kbig = {k: v for k, v in kern.items() if abs(v) >= KERNEL_MIN}
    krest = {k: v for k, v in kern.items() if abs(v) < KERNEL_MIN}
    k = group("kernel, functions changed by at least %g instr/pkt" % KERNEL_MIN, kbig, 0,
              "kernel, changed (savings %+.1f, additions %+.1f)"
              % (sum(v for v in kbig.values() if v < 0), sum(v for v in kbig.values() if v > 0)))
    rest = sum(krest.values()) + d.get(OTHER, 0)
    total("kernel, the rest (%d functions, each below %g; and code outside symbols)"
          % (len(krest), KERNEL_MIN), rest)
    total(USER + " (user space: the senders, mpbalctl and the setup's tools)", d.get(USER, 0))
    net = m + k + rest + d.get(USER, 0)
    total("= total, %s - loaded" % a.config, net)
    if "loaded" in bbench:
        ic = 1e9 / pps - 1e9 / bbench["loaded"][0]
        print("(the icount table's figure for the same, measurement only: %+.1f instr/pkt)" % ic)


main()
