#!/usr/bin/env bash
# make bench: figures, not pass/fail (speed targets are shown by ratios, not
# by timed tests that flake).
#  1. Guest: packets/s forwarded by the balancer of the thesis testbed with
#     stock ECMP, with mpbal loaded but no equalize route, and with each
#     strategy the module lists in net.mpbal.available_strategies; each
#     with its ratio to stock, measured in the same VM run. BENCH_CONFIGS
#     picks a subset (e.g. "loaded packet").
#  2. Host: per-decision cost of each strategy in the core (criterion) with
#     2, 4 and 16 nexthops.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=$top/out/bench
mkdir -p "$out"

# The bench kernel (no lockdep, kmemleak or refcount trackers) and a module
# built for it in a copy of the tree, so the test build is left alone.
kbuild=$(bash tools/build/kernel.sh bench | tail -n1)
rm -rf "$out/src"
mkdir -p "$out/src"
cp -r Kbuild include src "$out/src/"
env PATH=/usr/bin:/bin:/usr/sbin:/sbin:$PATH:$HOME/.cargo/bin \
	make -s -C "$kbuild" LLVM=-14 M="$out/src" modules >"$out/module.log" 2>&1 ||
	{ cat "$out/module.log"; exit 1; }
(cd tools/mpbalctl && cargo build --release --locked) >"$out/tool.log" 2>&1 || { cat "$out/tool.log"; exit 1; }

echo "== guest: forwarding rate (bench kernel; UDP, 64-byte payload, 2 sources, 256 flows, 3 uplinks 1:1:1)"
bash selftests/vm/run.sh --kernel "$kbuild/arch/x86/boot/bzImage" --module "$out/src/mpbal.ko" \
	--tool tools/mpbalctl/target/release/mpbalctl --timeout 1800 --no-kmemleak \
	--bin "$(command -v taskset)" \
	-- /selftests/bench.sh "${BENCH_ROUNDS:-7}" "${BENCH_PACKETS:-150000}" \
	"${BENCH_CONFIGS:-}" \
	</dev/null >"$out/guest.log" 2>&1 || {
	tail -n 40 "$out/guest.log"
	echo "bench: the guest run failed (log $out/guest.log)" >&2
	exit 1
}
grep -a '^BENCH:' "$out/guest.log" | awk '
	BEGIN {
		printf "%-10s %12s %9s  %s\n", "config", "packets/s", "vs stock", "target"
	}
	{
		target = ($2 == "stock") ? "-" : ($2 == "loaded") ? ">= 0.98" : ">= 0.90"
		ok = ($2 == "stock") ? "" : ($4 >= substr(target, 4) ? "  met" : "  MISSED")
		printf "%-10s %12d %9.3f  %s%s\n", $2, $3, $4, target, ok
	}'

echo
echo "== host: per-decision cost in the core (criterion, median)"
(cd src/core && cargo bench --locked --bench decision -- --noplot) >"$out/criterion.log" 2>&1 || {
	tail -n 30 "$out/criterion.log"
	exit 1
}
# Lines look like: "decision/packet/4      time:   [13.9 ns 14.2 ns 14.6 ns]";
# criterion puts the id on a line of its own when it is long.
# The strategies are listed in the order the bench measured them.
awk '
	/^decision\// { id = $1 }
	/time:/ {
		for (i = 1; i <= NF; i++) if ($i == "time:") break
		split(id, p, "/")
		if (p[2] != "" && !(p[2] in seen)) { seen[p[2]] = 1; s[++n] = p[2] }
		t[p[2], p[3]] = $(i + 3) " " $(i + 4)
	}
	END {
		printf "%-10s %14s %14s %14s\n", "strategy", "2 nexthops", "4 nexthops", "16 nexthops"
		for (i = 1; i <= n; i++)
			printf "%-10s %14s %14s %14s\n", s[i], t[s[i], 2], t[s[i], 4], t[s[i], 16]
	}' "$out/criterion.log"
echo "(logs: $out)"
