#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The headroom strategy (each uplink at the same share of its capacity) on
# the shaped thesis testbed (tbf: up1 1 Mbit, up2 and up3 10 Mbit), the
# capacities configured with mpbalctl, net.mpbal.bw_interval_ms=250 and
# bw_ewma_log=2, equal weights (they play no part):
#  1. saturated links (a UDP flood of 32 Mbit/s from both sources): the
#     bytes mpbal steers to each uplink are within 10 % of its capacity
#     share (1/21, 10/21, 10/21), so no uplink gets more than it can carry
#     while another has room;
#  2. a load far below capacity (3.5 Mbit/s) also uses the 1 Mbit link, in
#     proportion to its capacity (within a factor of two: the bandwidth
#     strategy leaves it idle here, mpbal_strategy_bandwidth.sh).
# The routers drop the test datagrams (nft), and the sources send 4000-byte
# datagrams paced over a 9000-byte MTU (a TCG guest forwards ~1000
# packets/s; see mpbal_strategy_bandwidth.sh).
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_strategy_headroom.sh
set -u

ALL_TESTS="
	test_saturated_shares
	test_low_load_uses_slow_link
"

# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

mpbal_init ip tc nft jq flowgen mpbalctl timeout

CAP_SUM=21000000

setup()
{
	testbed_shaped_load headroom headroom 1 1 1
}

# shares_by_capacity TAG LO HI: the bytes steered per uplink between
# snapshots S0 and S1, each within LO%..HI% of its capacity share.
shares_by_capacity()
{
	local tag=$1 lo=$2 hi=$3 b total i rc=0 exp got=""

	read -r -a b <<<"$(snap_d3 S0 S1 u bytes)"
	total=$(sum "${b[@]}")
	[ "$total" -gt 0 ] || rc=1
	for i in 0 1 2; do
		exp=$((total * (TB_SHAPE_BPS[i] / 1000) / (CAP_SUM / 1000)))
		got+=" up$((i + 1)) ${b[i]} (capacity share $exp)"
		within_percent "${b[i]}" "$exp" "$lo" "$hi" || rc=1
	done
	log_info "$tag: steered bytes:$got; link tx $(snap_d3 S0 S1 txb) bytes"
	SHARES="${b[*]}"
	return $rc
}

# 1. Both sources flood 2 x 500 datagrams/s of 4000 bytes (32 Mbit/s);
# once every tbf drops, 2 s for the estimates, then 6 s measured.
test_saturated_shares()
{
	local rc

	bal_need_strategy headroom
	TBF_DROPS=()
	bg_start A 120 "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 20000-20063 -n 20000 -s 4000 -r 500
	bg_start B 120 "$NS_SRCB" flowgen udp -d "$DST_ALL" -p 20000-20063 -n 20000 -s 4000 -r 500
	tbf_saturated
	wait_until 30 tbf_saturated
	rc=$?
	sleep 2
	bal_snap S0
	sleep 6
	bal_snap S1
	tbf_saturated || rc=1
	bg_stop A
	bg_stop B
	log_test $rc "headroom: the flood saturates up1, up2 and up3 (every tbf dropping)"
	shares_by_capacity "saturated" 90 110
	log_test $? "headroom: saturated: steered bytes up1/up2/up3 $SHARES within 10% of 1:10:10"
}

# 2. 3.5 Mbit/s from one source for 5 s: every uplink at about 17 % of its
# capacity, so up1 carries about 1/21 of the bytes.
test_low_load_uses_slow_link()
{
	local ra

	bal_need_strategy headroom
	bal_quiesce
	log_test $? "headroom: estimates back below 100 kbit/s when idle"
	bal_snap S0
	bg_start A 60 "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 21000-21063 -n 1800 -s 1200 -r 360
	bg_wait A
	ra=$?
	bal_snap S1
	log_info "low load: $(bg_out A)"
	[ "$ra" -eq 0 ] && shares_by_capacity "low load" 50 200
	log_test $? "headroom: 3.5 Mbit/s offered: up1 used, every uplink within a factor 2 of its capacity share ($SHARES)"
}

setup
tests_run
mpbal_finish
tests_summary
