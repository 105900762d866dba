#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: the thesis testbed (figure 5.1) in network namespaces, mpbal
# loaded, and each strategy at work on real traffic, per uplink.
cd "$(dirname "$0")" || exit 1
# shellcheck source=selftests/testbed.sh
. ./testbed.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '# %s\n' "$*"; "$@"; }

# bars A B C: per-uplink deltas as a small table with bars.
bars() {
	local total=$(($1 + $2 + $3)) i v n
	for i in 1 2 3; do
		v=${!i}
		n=$((total ? v * 40 / total : 0))
		printf '  up%d %7d  %s\n' "$i" "$v" "$(printf '%*s' "$n" '' | tr ' ' '#')"
	done
}

# deltas KEY CMD...: runs CMD, prints how much each uplink's KEY of a
# bal_snap grew: "tx" (device tx packets) or "u packets" (what mpbal steered).
deltas() {
	local key=$1
	shift
	bal_snap S0
	"$@" >/dev/null
	bal_snap S1
	# shellcheck disable=SC2086 # "u packets" is two words
	snap_d3 S0 S1 $key
}

say "The thesis testbed: srcA, srcB -> balancer -> testa/testb/testc -> dst1, dst2"
sed -n '/^#  *172.16.1.0/,/testc eth2 -- dst2 eth2/p' testbed.sh | sed 's/^#/ /'
testbed_up --no-offload || die "testbed"
mpbal_unload_at_exit

say "Load the module (default strategy: session)"
run insmod "$MPBAL_MODULE" || die "insmod"
dmesg | grep -a 'mpbal: loaded'

say "An equalize multipath route (stock iproute2 can no longer say 'equalize')"
testbed_nexthops 1 2 3
run bal mpbalctl route add equalize "$DST_NET" "${NEXTHOPS[@]}" || die "route"
run bal mpbalctl route show
sleep 0.5
run bal grep -E 'equalize_routes|hash_policy' /proc/net/mpbal/stats

for s in route packet session; do
	say "strategy $s: 3000 UDP packets from srcA over 256 flows to 4 destinations (weights 1:2:3)"
	run bal mpbalctl strategy set "$s"
	sleep 0.3
	bars $(deltas tx ip netns exec "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 5000-5063 -n 3000 -s 64 -r 3000)
	case $s in
	route) echo "  (4 destinations, each pinned to one uplink, placed 1:2:3: 1, 1 and 2 destinations)" ;;
	packet) echo "  (every packet takes the next uplink: exactly 1:2:3)" ;;
	session) echo "  (each of the 256 flows is a connection; conntrack remembers its uplink's id in ct->mark)"
		run bal conntrack -L -p udp 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^mark=/) m[$i]++}
			END {for (k in m) printf "  %s (uplink id %d): %d connections\n", k, substr(k, 6) / 67108864, m[k]}' ;;
	esac
done

say "strategy session with TCP: 12 connections from srcB, each stays on one uplink"
ip netns exec "$NS_DST2" flowgen tcp-server -p 7000 -D
bars $(deltas tx ip netns exec "$NS_SRCB" flowgen tcp -d "$DST2_IP1" -p 7000 -c 12 -P 4 -b 200000)
run bal mpbalctl link show

say "strategy bandwidth: uplinks shaped like the thesis (up1 1 Mbit, up2 and up3 10 Mbit)"
testbed_shape
testbed_jumbo
run bal mpbalctl link set up1 capacity 1mbit
run bal mpbalctl link set up2 capacity 10mbit
run bal mpbalctl link set up3 capacity 10mbit
run bal sysctl -qw net.mpbal.bw_interval_ms=250 net.mpbal.bw_ewma_log=2
run bal mpbalctl strategy set bandwidth
echo "  3.5 Mbit/s of UDP for 5 s: the 10 Mbit uplinks always have more headroom than up1 (packets mpbal steered):"
bars $(deltas "u packets" ip netns exec "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 6000-6063 -n 1800 -s 1200 -r 360)
run bal mpbalctl link show
echo "  32 Mbit/s offered for 6 s: the 10 Mbit uplinks' headroom shrinks, and up1 takes traffic whenever it has the most:"
bars $(deltas "u packets" bash -c "ip netns exec $NS_SRCA flowgen udp -d $DST_ALL -p 6000-6063 -n 3000 -s 4000 -r 500 &
	ip netns exec $NS_SRCB flowgen udp -d $DST_ALL -p 6100-6163 -n 3000 -s 4000 -r 500; wait")
run bal mpbalctl link show

say "Locally generated traffic (from the balancer itself), strategy packet"
run bal mpbalctl strategy set packet
bars $(deltas tx bal flowgen udp -d "$DST_ALL" -p 5000-5063 -n 600 -s 64)

say "Counters"
run bal mpbalctl stats

say "Unload"
run rmmod mpbal
run bal sysctl net.ipv4.fib_multipath_hash_policy
echo
echo "demo done"
