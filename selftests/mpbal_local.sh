#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Locally generated traffic (from the balancer itself) is balanced too:
#  - packet strategy 1:2:3: UDP from the balancer over many ports splits by
#    weight within 1 % (link tx, cross-checked with mpbal's uplink table),
#    and packets_local counts every datagram;
#  - session strategy: TCP connections from the balancer complete, each
#    stays on one uplink (per 4-tuple counts on the routers) and its
#    conntrack mark names that uplink.
# The balancer's sockets are bound to its address on s1 (172.16.1.1): the
# routers route 172.16.0.0/16 back to it, but each knows only its own
# uplink subnet, so an uplink address chosen by the kernel (say up3's) is
# unreachable for replies returning via testa/testb whenever mpbal sends
# the connection out by another uplink (Documentation/overview.rst, Limits:
# locally generated traffic keeps its socket's source address; with several
# providers that needs SNAT).
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_local.sh
set -u

# Independent: test_udp_local uses the packet strategy (the module
# parameter), test_tcp_local switches to session.
ALL_TESTS="
	test_udp_local
	test_tcp_local
"

# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

mpbal_init ip nft jq conntrack flowgen mpbalctl timeout

WEIGHTS="1 2 3"
N_UDP=3600

test_udp_local()
{
	local out rc sent tx ul total exp pl

	bal_need_strategy packet
	bal_snap S0
	out=$(timeout 60 ip netns exec "$NS_BAL" flowgen udp -d "$DST_ALL" -p 6000-6899 -n "$N_UDP" -s 64 -B "$BAL_S1_IP")
	rc=$?
	bal_snap S1
	sent=$(flowgen_sent "$out")
	tx=$(snap_d3 S0 S1 tx)
	ul=$(snap_d3 S0 S1 u packets)
	# shellcheck disable=SC2086
	total=$(sum $tx)
	exp=$(shares_expect "$WEIGHTS" "$total")
	pl=$(snap_d S0 S1 s:packets_local)
	log_info "local udp: $out"
	log_info "local udp 1:2:3: link tx up1/up2/up3 $tx (total $total, expected $exp); mpbal uplinks $ul; packets_local +$pl steered +$(snap_d S0 S1 s:steered) fallback_reroute +$(snap_d S0 S1 s:fallback_reroute) fallback_diverted +$(snap_d S0 S1 s:fallback_diverted)"
	[ "$rc" -eq 0 ] && [ "$sent" -eq "$N_UDP" ] && [ "$total" -eq "$sent" ]
	log_test $? "local udp: all $sent datagrams from the balancer left by the uplinks ($total)"
	shares_within "$tx" "$WEIGHTS" 1%
	log_test $? "local udp 1:2:3: up1/up2/up3 $tx of $total within 1% of $exp"
	[ "$ul" = "$tx" ]
	log_test $? "local udp 1:2:3: mpbal uplinks table $ul = link tx deltas"
	[ "$pl" -eq "$sent" ]
	log_test $? "local udp: packets_local +$pl = $sent datagrams sent"
}

test_tcp_local()
{
	local ra rb pl

	bal_strategy session || { log_test 1 "local tcp: strategy session"; return; }
	wait_until 5 eval '[ "$(mpbal_stat "$NS_BAL" conntrack)" = held ]'
	log_test $? "local tcp: strategy session, mpbal holds conntrack"
	dst_servers 5001 || { log_test 1 "local tcp: servers in dst1 and dst2"; return; }
	bal_snap S0
	bg_start A 90 "$NS_BAL" flowgen tcp -d "$DST1_IP1" -p 5001 -c 6 -P 3 -b 200000 -t 80 -B "$BAL_S1_IP"
	bg_start B 90 "$NS_BAL" flowgen tcp -d "$DST2_IP2" -p 5001 -c 6 -P 3 -b 200000 -t 80 -B "$BAL_S1_IP"
	bg_wait A; ra=$?
	bg_wait B; rb=$?
	bal_snap S1
	pl=$(snap_d S0 S1 s:packets_local)
	log_info "local tcp: $(bg_out A) / $(bg_out B)"
	log_info "local tcp: packets_local +$pl sessions_new +$(snap_d S0 S1 s:sessions_new) remembered +$(snap_d S0 S1 s:remembered) fallback_reroute +$(snap_d S0 S1 s:fallback_reroute); link tx $(snap_d3 S0 S1 tx)"
	[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ]
	log_test $? "local tcp: 12 connections from the balancer to dst1, dst2 complete"
	[ "$pl" -gt 0 ]
	log_test $? "local tcp: packets_local grew (+$pl)"

	conns_check "local tcp" 5001 12 "$WEIGHTS"
}

setup()
{
	mpbal_load strategy=packet || die "insmod $MPBAL_KO failed: $MPBAL_LOAD_ERR"
	testbed_up --no-offload || die "testbed_up failed"
	routers_acct_setup || die "nft accounting on the routers failed"
	# shellcheck disable=SC2086
	bal_eq_route $WEIGHTS || die "equalize route"
	bal_uplink_ids || die "uplink ids"
}

setup
tests_run
mpbal_finish
tests_summary
