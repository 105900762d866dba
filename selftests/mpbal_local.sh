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
# the connection out by another uplink (DESIGN.md: a bound source address
# needs SNAT with several ISPs).
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_local.sh
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=selftests/lib.sh
. "$here/lib.sh"
# shellcheck source=selftests/testbed.sh
. "$here/testbed.sh"
# shellcheck source=selftests/lib_strategy.sh
. "$here/lib_strategy.sh"

require_cmd ip nft jq conntrack flowgen mpbalctl insmod rmmod timeout

WEIGHTS="1 2 3"
N_UDP=3600
MARK_SHIFT=16	# default ct_mark_mask 0xffff0000

udp_local()
{
	local out rc sent tx ul total exp pl

	st_snap S0
	out=$(timeout 60 ip netns exec "$NS_BAL" flowgen udp -d "$DST_ALL" -p 6000-6899 -n $N_UDP -s 64 -B "$BAL_S1_IP")
	rc=$?
	st_snap S1
	sent=$(st_flowgen_sent "$out")
	tx=$(st_d3 S0 S1 tx)
	ul=$(st_d3 S0 S1 u packets)
	# shellcheck disable=SC2086
	total=$(st_sum $tx)
	exp=$(st_expect "$WEIGHTS" "$total")
	pl=$(st_d S0 S1 s:packets_local)
	log_info "local udp: $out"
	log_info "local udp 1:2:3: link tx up1/up2/up3 $tx (total $total, expected $exp); mpbal uplinks $ul; packets_local +$pl steered +$(st_d S0 S1 s:steered) fallback_reroute +$(st_d S0 S1 s:fallback_reroute) fallback_diverted +$(st_d S0 S1 s:fallback_diverted)"
	[ "$rc" -eq 0 ] && [ "$sent" -eq $N_UDP ] && [ "$total" -eq "$sent" ]
	log_test $? "local udp: all $sent datagrams from the balancer left by the uplinks ($total)"
	st_within_pct "$tx" "$WEIGHTS" 1
	log_test $? "local udp 1:2:3: up1/up2/up3 $tx of $total within 1% of $exp"
	[ "$ul" = "$tx" ]
	log_test $? "local udp 1:2:3: mpbal uplinks table $ul = link tx deltas"
	[ "$pl" -eq "$sent" ]
	log_test $? "local udp: packets_local +$pl = $sent datagrams sent"
}

tcp_local()
{
	local ra rb pl

	st_strategy session || { log_test 1 "local tcp: strategy session"; return; }
	wait_until 5 eval '[ "$(st_stat conntrack)" = held ]'
	log_test $? "local tcp: strategy session, mpbal holds conntrack"
	ip netns exec "$NS_DST1" flowgen tcp-server -p 5001 -D >/dev/null &&
		ip netns exec "$NS_DST2" flowgen tcp-server -p 5001 -D >/dev/null ||
		{ log_test 1 "local tcp: servers in dst1 and dst2"; return; }
	st_snap S0
	st_bg A 90 "$NS_BAL" flowgen tcp -d "$DST1_IP1" -p 5001 -c 6 -P 3 -b 200000 -t 80 -B "$BAL_S1_IP"
	st_bg B 90 "$NS_BAL" flowgen tcp -d "$DST2_IP2" -p 5001 -c 6 -P 3 -b 200000 -t 80 -B "$BAL_S1_IP"
	st_wait A; ra=$?
	st_wait B; rb=$?
	st_snap S1
	pl=$(st_d S0 S1 s:packets_local)
	log_info "local tcp: $(st_out A) / $(st_out B)"
	log_info "local tcp: packets_local +$pl sessions_new +$(st_d S0 S1 s:sessions_new) remembered +$(st_d S0 S1 s:remembered) fallback_reroute +$(st_d S0 S1 s:fallback_reroute); link tx $(st_d3 S0 S1 tx)"
	[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ]
	log_test $? "local tcp: 12 connections from the balancer to dst1, dst2 complete"
	[ "$pl" -gt 0 ]
	log_test $? "local tcp: packets_local grew (+$pl)"

	st_conns_per_uplink 5001 "$(st_ct_port 5001)" ||
		{ log_test 1 "local tcp: router accounting readable"; return; }
	log_info "local tcp: connections per uplink up1/up2/up3 ${ST_PER[*]}; conntrack entries $ST_NCT"
	[ "$ST_NCONN" -eq 12 ] && [ "$ST_ONE" -eq 12 ]
	log_test $? "local tcp: each of $ST_NCONN connections (want 12) stayed on one uplink ($ST_ONE)" \
		"on several routers:${ST_BAD:- none}"
	[ "$ST_NCT" -eq 12 ] && [ "$ST_ONE" -eq 12 ] && [ -z "$ST_BADMARK" ]
	log_test $? "local tcp: conntrack mark of each connection names the uplink it used" \
		"mismatches:${ST_BADMARK:- none}"
	st_within_abs "${ST_PER[*]}" "$WEIGHTS" 1
	log_test $? "local tcp: connections per uplink ${ST_PER[*]} = 2/4/6 +-1 (weights $WEIGHTS)"
}

st_load strategy=packet || die "insmod $ST_KO failed"
st_up --no-offload || die "testbed_up failed"
st_acct_setup || die "nft accounting on the routers failed"
# shellcheck disable=SC2086
st_eq_route $WEIGHTS || die "equalize route"
declare -A IFX=()
for d in up1 up2 up3; do IFX[$d]=$(st_ifindex $d); done

udp_local
tcp_local

tests_summary
