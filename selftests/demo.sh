#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: the thesis testbed (figure 5.1) in network namespaces, mpbal
# loaded, and each strategy at work on real traffic, per uplink.
cd "$(dirname "$0")" || exit 1
. ./lib.sh
. ./testbed.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '# %s\n' "$*"; "$@"; }
bal() { ip netns exec "$NS_BAL" "$@"; }

# bars A B C: per-uplink deltas as a small table with bars.
bars() {
	local total=$(($1 + $2 + $3)) i v n
	for i in 1 2 3; do
		v=${!i}
		n=$((total ? v * 40 / total : 0))
		printf '  up%d %7d  %s\n' "$i" "$v" "$(printf '%*s' "$n" '' | tr ' ' '#')"
	done
}

# Per-uplink counts (up1 up2 up3): device tx packets, or what mpbal steered.
tx_packets() { testbed_uplink_tx tx_packets; }
steered() { bal mpbalctl -j link show | jq -r 'map({(.dev): .packets}) | add | [.up1, .up2, .up3] | @tsv'; }

deltas() { # deltas COUNTS CMD...: runs CMD, prints how much each of COUNTS grew
	local counts=$1 b a
	shift
	b=($($counts))
	"$@" >/dev/null
	a=($($counts))
	echo $((a[0] - b[0])) $((a[1] - b[1])) $((a[2] - b[2]))
}

say "The thesis testbed: srcA, srcB -> balancer -> testa/testb/testc -> dst1, dst2"
sed -n '7,14p' testbed.sh | sed 's/^#/ /'
testbed_up --no-offload || die "testbed"
at_exit "lsmod | grep -q mpbal && rmmod mpbal"

say "Load the module (default strategy: session)"
run insmod "$MPBAL_MODULE" || die "insmod"
dmesg | grep -a 'mpbal: loaded'

say "An equalize multipath route (stock iproute2 can no longer say 'equalize')"
run bal mpbalctl route add equalize "$DST_NET" \
	nexthop via "$UP1_GW" dev up1 weight 1 \
	nexthop via "$UP2_GW" dev up2 weight 2 \
	nexthop via "$UP3_GW" dev up3 weight 3 || die "route"
run bal mpbalctl route show
sleep 0.5
run bal grep -E 'equalize_routes|hash_policy' /proc/net/mpbal/stats

for s in route packet session; do
	say "strategy $s: 3000 UDP packets from srcA over 256 flows to 4 destinations (weights 1:2:3)"
	run bal mpbalctl strategy set "$s"
	sleep 0.3
	bars $(deltas tx_packets ip netns exec "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 5000-5063 -n 3000 -s 64 -r 3000)
	case $s in
	route) echo "  (4 destinations, each pinned to one uplink, placed 1:2:3: 1, 1 and 2 destinations)" ;;
	packet) echo "  (every packet takes the next uplink: exactly 1:2:3)" ;;
	session) echo "  (each of the 256 flows is a connection; conntrack remembers its uplink in ct->mark)"
		run bal conntrack -L -p udp 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^mark=/) m[$i]++}
			END {for (k in m) printf "  %s (uplink ifindex %d): %d connections\n", k, substr(k, 6) / 65536, m[k]}' ;;
	esac
done

say "strategy session with TCP: 12 connections from srcB, each stays on one uplink"
ip netns exec "$NS_DST2" flowgen tcp-server -p 7000 -D
bars $(deltas tx_packets ip netns exec "$NS_SRCB" flowgen tcp -d "$DST2_IP1" -p 7000 -c 12 -P 4 -b 200000)
run bal mpbalctl link show

say "strategy bandwidth: uplinks shaped like the thesis (up1 1 Mbit, up2 and up3 10 Mbit)"
testbed_shape
# A TCG guest forwards about a thousand packets a second: big datagrams over
# a 9000-byte MTU are what can overload 21 Mbit/s of uplinks.
for d in s1 s2 up1 up2 up3; do ip -n "$NS_BAL" link set "$d" mtu 9000; done
for ns in "$NS_SRCA" "$NS_SRCB" "$NS_TESTA" "$NS_TESTB" "$NS_TESTC"; do ip -n "$ns" link set eth0 mtu 9000; done
run bal mpbalctl link set up1 capacity 1mbit
run bal mpbalctl link set up2 capacity 10mbit
run bal mpbalctl link set up3 capacity 10mbit
run bal sysctl -qw net.mpbal.bw_interval_ms=250 net.mpbal.bw_ewma_log=2
run bal mpbalctl strategy set bandwidth
echo "  3.5 Mbit/s of UDP for 5 s: the 10 Mbit uplinks always have more headroom than up1 (packets mpbal steered):"
bars $(deltas steered ip netns exec "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 6000-6063 -n 1800 -s 1200 -r 360)
run bal mpbalctl link show
echo "  32 Mbit/s offered for 6 s: the 10 Mbit uplinks' headroom shrinks, and up1 takes traffic whenever it has the most:"
bars $(deltas steered bash -c "ip netns exec $NS_SRCA flowgen udp -d $DST_ALL -p 6000-6063 -n 3000 -s 4000 -r 500 &
	ip netns exec $NS_SRCB flowgen udp -d $DST_ALL -p 6100-6163 -n 3000 -s 4000 -r 500; wait")
run bal mpbalctl link show

say "Locally generated traffic (from the balancer itself), strategy packet"
run bal mpbalctl strategy set packet
bars $(deltas tx_packets bal flowgen udp -d "$DST_ALL" -p 5000-5063 -n 600 -s 64)

say "Counters"
run bal mpbalctl stats

say "Unload"
run rmmod mpbal
run bal sysctl net.ipv4.fib_multipath_hash_policy
echo
echo "demo done"
