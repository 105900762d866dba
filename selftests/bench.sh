#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Forwarding packet rate through the balancer of the thesis testbed, in one
# guest run:
#   stock      stock ECMP (multipath route, no module; hash policy left at
#              its default 0)
#   loaded     mpbal loaded, the same stock route, no equalize route
#   route..    mpbal with an equalize route and each strategy (the names
#              in net.mpbal.available_strategies)
# Each figure is packets forwarded per second (sum of the uplinks' tx
# deltas over the senders' own send time), the median of ROUNDS rounds run
# interleaved so drifts in host load hit every configuration alike, with
# its ratio to stock. The routers drop the test packets at PRE_ROUTING (raw
# table) so the work measured is the sources' and the balancer's.
#
# Usage: bench.sh [ROUNDS [PACKETS [CONFIGS]]] (packets per source per
# measurement; CONFIGS a space-separated subset, stock always included;
# default: loaded and every strategy).
# Prints one line per configuration: `BENCH: <name> <pps> <ratio>`.
cd "$(dirname "$0")" || exit 1
# shellcheck source=selftests/testbed.sh
. ./testbed.sh

ROUNDS=${1:-7}
PACKETS=${2:-150000}
CONFIGS=(stock)
if [ -n "${3:-}" ]; then
	read -r -a CONFIGS <<<"stock $3"
else
	mpbal_load || die "insmod: $MPBAL_LOAD_ERR"
	mpbal_strategies || die "no net.mpbal.available_strategies"
	mpbal_unload || die "rmmod"
	CONFIGS+=(loaded "${MPBAL_STRATEGIES[@]}")
fi

testbed_up --no-offload
routers_drop_udp 20000-20255 || die "nft on the routers"

policy_is() { [ "$(ns_sysctl_get "$NS_BAL" net.ipv4.fib_multipath_hash_policy)" = "$1" ]; }

setup() { # setup CONFIG
	case $1 in
	stock)
		mpbal_loaded && { mpbal_unload || die "rmmod"; }
		ns_sysctl "$NS_BAL" net.ipv4.fib_multipath_hash_policy=0
		testbed_multipath_route 1 1 1
		;;
	loaded)
		mpbal_loaded || mpbal_load || die "insmod: $MPBAL_LOAD_ERR"
		testbed_multipath_route 1 1 1
		;;
	*)
		mpbal_loaded || mpbal_load || die "insmod: $MPBAL_LOAD_ERR"
		testbed_nexthops 1 1 1
		bal mpbalctl route replace equalize "$DST_NET" "${NEXTHOPS[@]}" || die "route"
		bal mpbalctl strategy set "$1" || die "strategy"
		# The worker sets the hash policy (and conntrack for session).
		wait_until 5 policy_is 1 || die "hash policy not managed"
		;;
	esac
	sleep 0.5
}

# measure: prints packets per second forwarded by the balancer.
measure() {
	local tx fa fb sa sb secs
	bal_snap S0
	fa=$(mktemp) fb=$(mktemp)
	# One sender per vCPU, always the same: placement must not differ
	# between configurations.
	ip netns exec "$NS_SRCA" taskset -c 0 flowgen udp -d "$DST_ALL" -p 20000-20127 -n "$PACKETS" -s 64 >"$fa" &
	ip netns exec "$NS_SRCB" taskset -c 1 flowgen udp -d "$DST_ALL" -p 20128-20255 -n "$PACKETS" -s 64 >"$fb" &
	wait
	bal_snap S1
	tx=$(snap_d3 S0 S1 tx)
	sa=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$fa")
	sb=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$fb")
	rm -f "$fa" "$fb"
	secs=$(echo "$sa $sb" | awk '{print ($1 > $2) ? $1 : $2}')
	# shellcheck disable=SC2086 # three numbers
	awk -v n="$(sum $tx)" -v s="$secs" 'BEGIN {printf "%d\n", (s > 0) ? n / s : 0}'
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
mpbal_loaded && mpbal_unload

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
stock=$(echo "${rates[stock]}" | median)
for c in "${CONFIGS[@]}"; do
	m=$(echo "${rates[$c]}" | median)
	awk -v c="$c" -v m="$m" -v s="$stock" -v all="${rates[$c]}" \
		'BEGIN {printf "BENCH: %s %d %.3f (rounds: %s)\n", c, m, (s > 0) ? m / s : 0, all}'
done
testbed_down
