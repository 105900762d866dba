#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Multipath routes WITHOUT equalize stay stock ECMP. The same UDP flows
# (same source ports, same sources, same destinations) are sent over a
# plain multipath route (weights 1:2:3) with the module not loaded and with
# it loaded; the per-uplink counts must be identical:
#  - fib_multipath_hash_policy=1, module loaded WITH an equalize route for
#    another prefix (so its hooks are active): packets_multipath counts the
#    packets, steered does not move;
#  - fib_multipath_hash_policy=0, module loaded without any equalize route.
# Everything runs in one testbed (the multipath hash seed is per netns).
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_stock.sh
set -u

# test_policy1 starts without the module and leaves it loaded with an
# equalize route for another prefix; test_policy0 removes that route and
# unloads it. Run alone, each loads or unloads the module first.
ALL_TESTS="
	test_policy1
	test_policy0
"

# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

mpbal_init ip jq flowgen mpbalctl timeout

OTHER_NET=10.99.0.0/16	# the equalize route that keeps the hooks busy
# 64 destinations: the testbed's four and 10.0.1.10-39, 10.0.2.10-39.
DESTS=("${TB_DSTS[@]}" "${TB_EXTRA_DSTS[@]}")
DEST_LIST=$(IFS=,; echo "${DESTS[*]}")
PER_SRC=$((${#DESTS[@]} * 10))	# 10 ports per destination

# flows: srcA (source port 40000) and srcB (40001) send one datagram to
# each (destination, port 31000-31009). Sets COUNTS "up1 up2 up3" (link tx
# deltas) and SENT; S0/S1 are the snapshots around it.
flows()
{
	local ra rb

	bal_snap S0
	bg_start A 60 "$NS_SRCA" flowgen udp -d "$DEST_LIST" -p 31000-31009 -n "$PER_SRC" -s 32 -S 40000
	bg_start B 60 "$NS_SRCB" flowgen udp -d "$DEST_LIST" -p 31000-31009 -n "$PER_SRC" -s 32 -S 40001
	bg_wait A; ra=$?
	bg_wait B; rb=$?
	bal_snap S1
	COUNTS=$(snap_d3 S0 S1 tx)
	SENT=$(($(flowgen_sent "$(bg_out A)") + $(flowgen_sent "$(bg_out B)")))
	# shellcheck disable=SC2086
	[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ] && [ "$(sum $COUNTS)" -eq "$SENT" ] &&
		[ "$SENT" -eq $((2 * PER_SRC)) ]
}

_idle()
{
	[ "$(mpbal_stat "$NS_BAL" equalize_routes)" = 0 ] && [ "$(mpbal_stat "$NS_BAL" hash_policy)" = idle ]
}

setup()
{
	testbed_up || die "testbed_up failed"
	dests_add || die "adding destination addresses failed"
	testbed_multipath_route 1 2 3 || die "stock multipath route"
}

# Policy 1: no module, then the module loaded with an equalize route for
# another prefix.
test_policy1()
{
	local ref rc

	mpbal_loaded && { mpbal_unload || log_test 1 "stock: setup: rmmod"; }
	ns_sysctl "$NS_BAL" net.ipv4.fib_multipath_hash_policy=1
	flows
	log_test $? "stock, policy 1, no module: $SENT datagrams forwarded ($COUNTS)"
	ref=$COUNTS

	mpbal_load || die "insmod $MPBAL_KO failed: $MPBAL_LOAD_ERR"
	bal_eq_route 1 1 1 "$OTHER_NET"
	log_test $? "stock, policy 1: module loaded, equalize route for $OTHER_NET (hash policy $(mpbal_stat "$NS_BAL" hash_policy))"
	ns_sysctl "$NS_BAL" net.ipv4.fib_multipath_hash_policy=1
	flows
	rc=$?
	log_info "policy 1: without mpbal $ref; with mpbal $COUNTS; packets_multipath +$(snap_d S0 S1 s:packets_multipath) steered +$(snap_d S0 S1 s:steered) packets_fwd +$(snap_d S0 S1 s:packets_fwd)"
	[ "$rc" -eq 0 ] && [ "$COUNTS" = "$ref" ]
	log_test $? "stock, policy 1: per-uplink counts identical with mpbal loaded: $COUNTS = $ref"
	[ "$(snap_d S0 S1 s:packets_multipath)" -eq "$SENT" ]
	log_test $? "stock, policy 1: packets_multipath +$(snap_d S0 S1 s:packets_multipath) counts all $SENT"
	[ "$(snap_d S0 S1 s:steered)" -eq 0 ] && [ "$(snap_d S0 S1 s:packets_fwd)" -eq 0 ]
	log_test $? "stock, policy 1: steered +$(snap_d S0 S1 s:steered), packets_fwd +$(snap_d S0 S1 s:packets_fwd) (both 0)"
}

# Policy 0: module loaded without equalize routes, then not loaded.
test_policy0()
{
	local loaded rc pol

	mpbal_loaded || mpbal_load || die "insmod $MPBAL_KO failed: $MPBAL_LOAD_ERR"
	[ "$(mpbal_stat "$NS_BAL" equalize_routes)" = 0 ] || bal mpbalctl route del "$OTHER_NET"
	wait_until 5 _idle
	log_test $? "stock, policy 0: equalize route removed, mpbal idle"
	ns_sysctl "$NS_BAL" net.ipv4.fib_multipath_hash_policy=0
	flows
	rc=$?
	loaded=$COUNTS
	pol=$(ns_sysctl_get "$NS_BAL" net.ipv4.fib_multipath_hash_policy)
	log_test $rc "stock, policy 0, module loaded, no equalize route: $SENT datagrams forwarded ($COUNTS)"
	[ "$pol" = 0 ]
	log_test $? "stock, policy 0: mpbal left fib_multipath_hash_policy at 0 ($pol)"
	mpbal_unload
	log_test $? "stock, policy 0: rmmod"
	flows
	rc=$?
	log_info "policy 0: with mpbal loaded $loaded; without $COUNTS"
	[ "$rc" -eq 0 ] && [ "$COUNTS" = "$loaded" ]
	log_test $? "stock, policy 0: per-uplink counts identical without mpbal: $COUNTS = $loaded"
}

setup
tests_run
mpbal_finish
tests_summary
