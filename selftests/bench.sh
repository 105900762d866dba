#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Forwarding packet rate through the balancer of the thesis testbed, in one
# guest run:
#   stock      stock ECMP (multipath route, no module; hash policy left at
#              its default 0)
#   loaded     mpbal loaded, the same stock route, no equalize route
#   route..    mpbal with an equalize route and each strategy
# Each figure is packets forwarded per second (sum of the uplinks' tx
# deltas over the senders' own send time), the median of ROUNDS rounds run
# interleaved so drifts in host load hit every configuration alike, with
# its ratio to stock. The routers drop the test packets at PRE_ROUTING (raw
# table) so the work measured is the sources' and the balancer's.
#
# Usage: bench.sh [ROUNDS [PACKETS [CONFIGS]]] (packets per source per
# measurement; CONFIGS a space-separated subset, stock always included).
# Prints one line per configuration: `BENCH: <name> <pps> <ratio>`.
cd "$(dirname "$0")" || exit 1
. ./lib.sh
. ./testbed.sh

ROUNDS=${1:-7}
PACKETS=${2:-150000}
read -r -a CONFIGS <<<"stock ${3:-loaded route packet session bandwidth}"


testbed_up --no-offload
for ns in "$NS_TESTA" "$NS_TESTB" "$NS_TESTC"; do
	ip netns exec "$ns" nft -f - <<'NFT' || die "nft on $ns"
table ip bench {
	chain pre {
		type filter hook prerouting priority raw; policy accept;
		udp dport 20000-20255 drop
	}
}
NFT
done

policy_is() { [ "$(ns_sysctl_get "$NS_BAL" net.ipv4.fib_multipath_hash_policy)" = "$1" ]; }

loaded=0
setup() { # setup CONFIG
	case $1 in
	stock)
		[ $loaded = 1 ] && { rmmod mpbal; loaded=0; }
		ns_sysctl "$NS_BAL" net.ipv4.fib_multipath_hash_policy=0
		testbed_multipath_route 1 1 1
		;;
	loaded)
		[ $loaded = 0 ] && { insmod "$MPBAL_MODULE" || die "insmod"; loaded=1; }
		testbed_multipath_route 1 1 1
		;;
	*)
		[ $loaded = 0 ] && { insmod "$MPBAL_MODULE" || die "insmod"; loaded=1; }
		ip netns exec "$NS_BAL" mpbalctl route replace equalize "$DST_NET" \
			nexthop via "$UP1_GW" dev "$UP1" weight 1 \
			nexthop via "$UP2_GW" dev "$UP2" weight 1 \
			nexthop via "$UP3_GW" dev "$UP3" weight 1 || die "route"
		ip netns exec "$NS_BAL" mpbalctl strategy set "$1" || die "strategy"
		# The worker sets the hash policy (and conntrack for session).
		wait_until 5 policy_is 1 || die "hash policy not managed"
		;;
	esac
	sleep 0.5
}

# measure: prints packets per second forwarded by the balancer.
measure() {
	local before after fa fb sa sb secs
	before=$(testbed_uplink_tx tx_packets | awk '{for (i = 1; i <= NF; i++) s += $i} END {print s}')
	fa=$(mktemp) fb=$(mktemp)
	# One sender per vCPU, always the same: placement must not differ
	# between configurations.
	ip netns exec "$NS_SRCA" taskset -c 0 flowgen udp -d "$DST_ALL" -p 20000-20127 -n "$PACKETS" -s 64 >"$fa" &
	ip netns exec "$NS_SRCB" taskset -c 1 flowgen udp -d "$DST_ALL" -p 20128-20255 -n "$PACKETS" -s 64 >"$fb" &
	wait
	after=$(testbed_uplink_tx tx_packets | awk '{for (i = 1; i <= NF; i++) s += $i} END {print s}')
	sa=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$fa")
	sb=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$fb")
	rm -f "$fa" "$fb"
	secs=$(echo "$sa $sb" | awk '{print ($1 > $2) ? $1 : $2}')
	awk -v n=$((after - before)) -v s="$secs" 'BEGIN {printf "%d\n", (s > 0) ? n / s : 0}'
}

declare -A rates
for ((r = 1; r <= ROUNDS; r++)); do
	for c in "${CONFIGS[@]}"; do
		setup "$c"
		pps=$(measure)
		rates[$c]+="$pps "
		log_info "round $r $c: $pps pps"
	done
done
[ $loaded = 1 ] && rmmod mpbal

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
stock=$(echo "${rates[stock]}" | median)
for c in "${CONFIGS[@]}"; do
	m=$(echo "${rates[$c]}" | median)
	awk -v c="$c" -v m="$m" -v s="$stock" -v all="${rates[$c]}" \
		'BEGIN {printf "BENCH: %s %d %.3f (rounds: %s)\n", c, m, (s > 0) ? m / s : 0, all}'
done
testbed_down
