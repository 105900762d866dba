#!/usr/bin/env bash
# make thesis: the thesis's experiment (chapters 5 and 6) on the bench
# (non-debug) kernel in one QEMU guest (TCG, 2 vCPUs), and its figures.
#
#   make thesis                                   # everything (~45 min)
#   THESIS_PARTS="mixed delay" make thesis        # a subset (calibration
#   THESIS_SIZES="8k 1m" THESIS_PARTS=sizes \     #  always runs first)
#       THESIS_CONFIGS="stock-l4 packet" make thesis
#
# What runs in the guest and what it measures: selftests/thesis.sh (the
# testbed of figure 5.1 shaped 1/10/10 Mbit, a link-bound calibration that
# fails the run when the guest cannot carry the shaped rates, the per-size
# workloads of figures 6.1-6.10 and 6.12, the mixed one of 6.11, and the
# mixed one over paths of 5/20/40 ms for reordering). The guest prints
# "THESIS:" lines on its console; this script keeps them and
# tools/thesis/report.py turns them into out/thesis/:
#   runs.csv        one row per variant x workload x configuration
#   links.csv       one row per variant x workload x configuration x uplink
#   transfers.csv   one row per transfer
#   calibration.csv the link-bound check
#   summary.md      the tables (makespan, goodput, share of 21 Mbit/s,
#                   bytes per uplink, retransmissions, reordering)
#   *.png           the charts (gnuplot): bandwidth per uplink per
#                   configuration for each size and for mixed (figures
#                   6.1-6.11), mean transfer time per size (6.12), and
#                   reordering and retransmissions with delays
#   guest.log       the console (guest.log.console: run.sh's copy)
#
# Environment (each passed to the guest only when set):
#   THESIS_PARTS   "calib sizes mixed delay" (default all)
#   THESIS_SIZES   sizes of the sizes part (default 8k 16k 64k 128k 512k
#                  1m 2m; "all" adds 4m 8m 16m: ~75 min more)
#   THESIS_CONFIGS configurations (default stock-l3 stock-l4 and every
#                  strategy in net.mpbal.available_strategies)
#   THESIS_DELAY_CONFIGS  the delay part's (default: THESIS_CONFIGS but
#                  stock-l3)
#   THESIS_COUNTS  files per source per destination: "scaled" (default:
#                  the thesis's 20 up to 64k, then 1.25 MiB a stream, at
#                  least one file), "thesis" (its 20 up to 512k and 5 above:
#                  1.4 GB a configuration, hours) or "SMALL/LARGE"
#   THESIS_BW      net.mpbal.bw_interval_ms and bw_ewma_log (default "250 2")
#   THESIS_CALIB_PCT  the calibration's bar (default 95)
#   THESIS_TIMEOUT seconds the guest may run (default 5400)
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=$top/out/thesis
mkdir -p "$out"

# The bench kernel (no lockdep, KASAN, kmemleak or refcount trackers): the
# debug test kernel cannot forward 21 Mbit/s under TCG.
kbuild=$(bash tools/build/kernel.sh bench | tail -n1)

# mpbal.ko for the bench kernel, built in a copy of the tree so the test
# build is left alone (as bench.sh does).
mod=$out/module
rm -rf "$mod"
mkdir -p "$mod"
cp -r Kbuild include src "$mod/"
env PATH="/usr/bin:/bin:/usr/sbin:/sbin:$PATH:$HOME/.cargo/bin" \
	make -s -C "$kbuild" LLVM=-14 M="$mod" modules >"$mod.log" 2>&1 ||
	{ cat "$mod.log"; exit 1; }
(cd tools/mpbalctl && cargo build --release --locked) >"$out/tool.log" 2>&1 ||
	{ cat "$out/tool.log"; exit 1; }

envs=()
for v in THESIS_PARTS THESIS_SIZES THESIS_CONFIGS THESIS_DELAY_CONFIGS THESIS_COUNTS \
	THESIS_BW THESIS_CALIB_PCT; do
	[ -n "${!v:-}" ] && envs+=("$v=${!v}")
done

rm -f "$out"/*.png "$out"/*.csv "$out"/*.dat "$out/charts.gp" "$out/summary.md" "$out/thesis.raw"
echo "thesis: guest run on $(basename "$kbuild") ${envs[*]:+(${envs[*]})}; console in $out/guest.log"
t0=$(date +%s)
rc=0
bash selftests/vm/run.sh --kernel "$kbuild/arch/x86/boot/bzImage" --module "$mod/mpbal.ko" \
	--tool tools/mpbalctl/target/release/mpbalctl --timeout "${THESIS_TIMEOUT:-5400}" \
	--no-kmemleak --log "$out/guest.log.console" \
	-- env ${envs[@]+"${envs[@]}"} /selftests/thesis.sh </dev/null >"$out/guest.log" 2>&1 || rc=$?
t1=$(date +%s)
# Console lines end in \r\n.
grep -a '^THESIS: ' "$out/guest.log" | tr -d '\r' >"$out/thesis.raw" || true
grep -a -E '^(INFO|thesis|ERROR|vm):' "$out/guest.log" | tr -d '\r' | grep -v '^vm: initramfs' || true
echo "thesis: guest exited rc=$rc after $((t1 - t0)) s"
if [ ! -s "$out/thesis.raw" ]; then
	tail -n 40 "$out/guest.log"
	echo "thesis: no results (log $out/guest.log)" >&2
	exit 1
fi

python3 tools/thesis/report.py "$out/thesis.raw" "$out"
if command -v gnuplot >/dev/null; then
	(cd "$out" && gnuplot charts.gp) || { echo "thesis: gnuplot failed" >&2; rc=1; }
else
	echo "thesis: gnuplot missing (make deps installs gnuplot-nox): no charts" >&2
	rc=1
fi
cat "$out/summary.md"
echo "thesis: results in $out (summary.md, *.csv, *.png); $((t1 - t0)) s in the guest"
exit "$rc"
