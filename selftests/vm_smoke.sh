#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Smoke test of the VM harness and the thesis testbed with the stock kernel
# (no mpbal): stock ECMP forwards and spreads UDP flows, TCP gets through,
# and --shape holds the slow uplink near 1 Mbit. Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE -- /selftests/vm_smoke.sh
set -u

ALL_TESTS="
	test_ping
	test_udp_ecmp
	test_tcp
	test_shape
"

# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

require_cmd ip tc flowgen

# The testbed with a stock multipath route 1:1:1 to $DST_NET: what every
# test needs (test_shape builds it again, shaped, so it runs last).
setup()
{
	testbed_up
	log_test $? "testbed: up"
	testbed_multipath_route 1 1 1
	log_test $? "route: stock multipath 1:1:1 to $DST_NET on the balancer"
}

test_ping()
{
	local ns dst rc=0

	for ns in "$NS_SRCA" "$NS_SRCB"; do
		for dst in "${TB_DSTS[@]}"; do
			ip netns exec "$ns" ping -q -c 1 -W 2 "$dst" >/dev/null || {
				rc=1
				log_info "no ping reply ${ns#"$NS_PREFIX"} -> $dst"
			}
		done
	done
	log_test $rc "testbed: sources reach all four destinations"
}

test_udp_ecmp()
{
	local n=3000 d=() i total rc=0 out

	ns_sysctl "$NS_BAL" net.ipv4.fib_multipath_hash_policy=1
	bal_snap S0
	# 4 addresses x 750 ports: 3000 distinct flows, one packet each.
	out=$(ip netns exec "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 10000-10749 -n $n -s 64)
	rc=$?
	log_info "$out"
	bal_snap S1
	read -r -a d <<<"$(snap_d3 S0 S1 tx)"
	total=$(sum "${d[@]}")
	log_info "uplink tx packets up1/up2/up3: ${d[*]} (total $total)"
	log_test $rc "udp: flowgen sent $n datagrams"

	[ "$total" -eq $n ]
	log_test $? "udp: all $n forwarded on the uplinks" "got $total"

	# Stock ECMP hashes flows: not exact, but every uplink must carry a
	# real share (>= 10 %) of 3000 flows.
	rc=0
	for i in 0 1 2; do
		[ $((d[i] * 100)) -ge $((total * 10)) ] || rc=1
	done
	log_test $rc "udp: ECMP spreads flows over all uplinks" "${d[*]}"
}

test_tcp()
{
	local out rc

	out=$(ip netns exec "$NS_DST2" flowgen tcp-server -p 5001 -D) ||
		{ log_test 1 "tcp: server starts in dst2" "$out"; return; }
	out=$(ip netns exec "$NS_SRCB" flowgen tcp -d "$DST2_IP1" -p 5001 \
		-c 8 -b 1000000 -P 4 -t 60)
	rc=$?
	log_info "$out"
	log_test $rc "tcp: 8 x 1 MB srcB -> dst2 complete"
}

test_shape()
{
	local pid t0 t1 bps rc

	testbed_down
	testbed_up --shape || { log_test 1 "shape: testbed_up --shape"; return; }
	tc -n "$NS_BAL" qdisc show dev "$UP1" | grep -q 'tbf.*rate 1Mbit'
	log_test $? "shape: tbf 1mbit on $UP1"

	# Pin one destination to the slow uplink, then offer ~3.3 Mbit/s.
	ip -n "$NS_BAL" route add "$DST1_IP1/32" via "$UP1_GW" dev "$UP1"
	ip netns exec "$NS_SRCA" flowgen udp -d "$DST1_IP1" -p 9 -n 1400 \
		-s 1000 -r 400 >/dev/null &
	pid=$!
	# Skip the first second: the bucket's burst would inflate the rate.
	sleep 1
	bal_snap S0; t0=$(now_ms)
	sleep 2
	bal_snap S1; t1=$(now_ms)
	bps=$(($(snap_d S0 S1 "txb:$UP1") * 8 * 1000 / (t1 - t0)))
	log_info "measured $UP1 rate: $bps bit/s over $((t1 - t0)) ms (tbf 1mbit)"
	within_percent "$bps" 1000000 50 130
	log_test $? "shape: $UP1 carries 1 Mbit/s (50..130 %)" "$bps bit/s"

	wait_pid_exit 10 "$pid" || kill "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	log_test $rc "shape: flowgen finished the paced send"
}

setup
tests_run
tests_summary
