#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The session strategy on the thesis testbed: per connection, remembered in
# the conntrack mark (the uplink's id, in the ct_mark_mask bits).
#  1. 24 TCP connections from both sources to four destinations: the
#     routers count every connection's packets per 4-tuple (nft dynamic
#     set), and each 4-tuple reached exactly one router; the conntrack mark
#     of each connection names the uplink it used; the connections are
#     spread by weight (1:2:3 -> 4/8/12, +-1).
#  2. Connections that come IN through an uplink (dst2 -> a server on srcA,
#     arriving on up2): all replies leave through up2.
#  3. Long transfers while the uplink of some of them goes down (up3 admin
#     down on the balancer; then the peer, testc eth0, down so up3 loses
#     carrier): they move to live uplinks and complete.
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_strategy_session.sh
set -u

# The failover tests shape the uplinks (once); test_connections and
# test_inbound expect them unshaped, so they come first.
ALL_TESTS="
	test_connections
	test_inbound
	test_failover_admin
	test_failover_carrier
"

# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

mpbal_init ip tc nft jq conntrack flowgen mpbalctl timeout

WEIGHTS="1 2 3"

# 1. Connections keep one uplink; marks; spread.
test_connections()
{
	local ra rb rc rd k

	bal_snap S0
	bg_start A1 90 "$NS_SRCA" flowgen tcp -d "$DST1_IP1" -p 5001 -c 6 -P 3 -b 150000 -t 80
	bg_start A2 90 "$NS_SRCA" flowgen tcp -d "$DST2_IP1" -p 5001 -c 6 -P 3 -b 150000 -t 80
	bg_start B1 90 "$NS_SRCB" flowgen tcp -d "$DST1_IP2" -p 5001 -c 6 -P 3 -b 150000 -t 80
	bg_start B2 90 "$NS_SRCB" flowgen tcp -d "$DST2_IP2" -p 5001 -c 6 -P 3 -b 150000 -t 80
	bg_wait A1; ra=$?
	bg_wait A2; rb=$?
	bg_wait B1; rc=$?
	bg_wait B2; rd=$?
	bal_snap S1
	for k in A1 A2 B1 B2; do log_info "$k: $(bg_out $k)"; done
	[ $((ra + rb + rc + rd)) -eq 0 ]
	log_test $? "session: 24 TCP connections (srcA, srcB -> dst1, dst2) complete"

	log_info "session: sessions_new +$(snap_d S0 S1 s:sessions_new)"
	conns_check session 5001 24 "$WEIGHTS"
}

# 2. Inbound connections: dst2 (routed back via testb, so arriving on up2)
# connects to a server on srcA from 10.0.2.1 (inside the equalize route);
# the replies must all leave by up2.
test_inbound()
{
	local rc tx ib out k m dev bad="" n=0

	ip netns exec "$NS_SRCA" flowgen tcp-server -p 5002 -D >/dev/null ||
		{ log_test 1 "session inbound: server on srcA"; return; }
	bal_snap S0
	out=$(timeout 90 ip netns exec "$NS_DST2" flowgen tcp -d "$SRCA_IP" -p 5002 -B "$DST2_IP1" -c 6 -P 3 -b 150000 -t 80)
	rc=$?
	bal_snap S1
	tx=$(snap_d3 S0 S1 tx)
	ib=$(snap_d S0 S1 s:inbound_recorded)
	log_info "inbound: $out; balancer uplink tx up1/up2/up3: $tx; inbound_recorded +$ib; remembered +$(snap_d S0 S1 s:remembered)"
	log_test $rc "session inbound: 6 connections dst2 -> srcA complete"
	read -r -a tx <<<"$tx"
	[ "${tx[0]}" -eq 0 ] && [ "${tx[2]}" -eq 0 ] && [ "${tx[1]}" -gt 0 ]
	log_test $? "session inbound: replies left only by up2 (tx up1 ${tx[0]} up2 ${tx[1]} up3 ${tx[2]})"
	[ "$ib" -eq 6 ]
	log_test $? "session inbound: inbound_recorded grew by $ib (6 connections)"
	while read -r k m _; do
		[ -n "$k" ] || continue
		n=$((n + 1))
		mark_dev_of dev "$m"
		[ "$dev" = up2 ] || bad+=" $k:$dev"
	done <<<"$(bal_ct_port 5002)"
	[ "$n" -eq 6 ] && [ -z "$bad" ]
	log_test $? "session inbound: the marks of all $n connections name up2" "others:${bad:- none}"
}

# Slow the uplinks down so that transfers last long enough to take a link
# down in the middle of them (the 6 on up3 need ~30 s), while the guest's
# CPU keeps up (a debug kernel under TCG forwarding 12 flows at 2 Mbit/s
# each made a conntrack poll take 5 s). The sources' send buffers are
# capped (32 kB per connection) so that the tbf queues (4 s, 500 kB) never
# overflow: no SYN is lost, every connection is set up at once.
SHAPED=""
shape_uplinks()
{
	local d

	[ -n "$SHAPED" ] && return 0
	for d in up1 up2 up3; do
		tc -n "$NS_BAL" qdisc replace dev "$d" root tbf rate 1mbit burst 16k latency 4s || return 1
	done
	ns_sysctl "$NS_SRCA" net.ipv4.tcp_wmem="4096 16384 32768" &&
		ns_sysctl "$NS_SRCB" net.ipv4.tcp_wmem="4096 16384 32768" &&
		SHAPED=1
}

# _ct_ready PORT N: all N connections to PORT are past the handshake
# (in any later state: one alone on an uplink can finish within 3 s,
# before the slow poll sees it) and at least one on up3 is still
# ESTABLISHED. Fills failover's on3 (those on up3) and est (how many are
# ESTABLISHED) from this poll.
_ct_ready()
{
	local k m st dev up=0

	on3=() est=0
	while read -r k m st; do
		case $st in
		"" | SYN_SENT | SYN_RECV) continue ;;
		esac
		up=$((up + 1))
		[ "$st" = ESTABLISHED ] || continue
		est=$((est + 1))
		mark_dev_of dev "$m"
		[ "$dev" = up3 ] && on3[$k]=$st
	done <<<"$(bal_ct_port "$1")"
	[ "$up" -ge "$2" ] && [ "${#on3[@]}" -gt 0 ]
}

# _on3_moved PORT: every connection in failover's on3 has a conntrack
# entry whose mark names up1 or up2; MOVED_BAD lists the others.
_on3_moved()
{
	local k m st dev
	local -A seen=()

	MOVED_BAD=""
	while read -r k m st; do
		[ -n "$k" ] && [ -n "${on3[$k]:-}" ] || continue
		seen[$k]=1
		mark_dev_of dev "$m"
		case $dev in
		up1 | up2) ;;
		*) MOVED_BAD+=" $k:$dev" ;;
		esac
	done <<<"$(bal_ct_port "$1")"
	for k in "${!on3[@]}"; do
		[ -n "${seen[$k]:-}" ] || MOVED_BAD+=" $k:no-entry"
	done
	[ -z "$MOVED_BAD" ]
}

# failover TAG PORT DOWN_CMD.. : 12 x 600 kB transfers (srcA -> dst1,
# srcB -> dst2) to PORT over 1 Mbit/s uplinks (slow, so the transfers last
# and the guest stays responsive); as soon as all 12 are set up, run
# DOWN_CMD (takes up3 out of service). The connections ESTABLISHED on up3
# at that moment share 1 Mbit/s, so they have seconds of data left (a
# conntrack poll takes up to 7 s on a busy TCG guest: waiting for all 12
# to be ESTABLISHED at once can outlast them). Those on up3 must get a
# mark that names a live uplink while they still transfer (read at the
# end, an entry closed by a reset has already expired), and every
# connection must complete.
failover()
{
	local tag=$1 port=$2 ra rb dr t0 t1 mv est=0
	local -A on3=()

	shift 2
	dst_servers "$port" || { log_test 1 "session $tag: servers"; return; }
	bal_snap S0
	t0=$(now_ms)
	bg_start A 150 "$NS_SRCA" flowgen tcp -d "$DST1_IP1" -p "$port" -c 6 -P 6 -b 600000 -t 140
	bg_start B 150 "$NS_SRCB" flowgen tcp -d "$DST2_IP2" -p "$port" -c 6 -P 6 -b 600000 -t 140
	wait_until 20 _ct_ready "$port" 12
	"$@"
	dr=$?
	log_info "$tag: at $(($(now_ms) - t0)) ms, $est connections established, ${#on3[@]} of them on up3"
	[ "$dr" -eq 0 ] && [ "${#on3[@]}" -gt 0 ]
	log_test $? "session $tag: up3 out of service under ${#on3[@]} established connections"
	t1=$(now_ms)
	wait_until 20 _on3_moved "$port"
	mv=$?
	log_info "$tag: marks of the up3 connections checked for $(($(now_ms) - t1)) ms after the down"
	bg_wait A; ra=$?
	bg_wait B; rb=$?
	bal_snap S1
	log_info "$tag: srcA: $(bg_out A)"
	log_info "$tag: srcB: $(bg_out B)"
	log_info "$tag: rechosen_dead +$(snap_d S0 S1 s:rechosen_dead) rechosen_gone +$(snap_d S0 S1 s:rechosen_gone); uplink tx $(snap_d3 S0 S1 tx)"
	[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ]
	log_test $? "session $tag: all 12 transfers complete"
	[ $(($(snap_d S0 S1 s:rechosen_dead) + $(snap_d S0 S1 s:rechosen_gone))) -gt 0 ]
	log_test $? "session $tag: rechosen_dead +$(snap_d S0 S1 s:rechosen_dead), rechosen_gone +$(snap_d S0 S1 s:rechosen_gone) (> 0)"
	[ "$mv" -eq 0 ] && [ "${#on3[@]}" -gt 0 ]
	log_test $? "session $tag: the ${#on3[@]} connections that were on up3 now have marks naming up1 or up2" \
		"still up3 or other:${MOVED_BAD:- none}"
}

_route_alive()
{
	! bal ip route show "$DST_NET" | grep -qE 'dead|linkdown'
}

# restore_up3: up3 back in service, with the testbed's permanent neighbours
# (an admin down flushes them).
restore_up3()
{
	ip -n "$NS_TESTC" link set eth0 up &&
		ip -n "$NS_BAL" link set up3 up &&
		ip -n "$NS_BAL" neigh replace "$UP3_GW" lladdr 02:00:00:00:05:02 dev up3 nud permanent &&
		ip -n "$NS_TESTC" neigh replace "$UP3_IP" lladdr 02:00:00:00:05:01 dev eth0 nud permanent &&
		wait_until 10 _route_alive
}

setup()
{
	mpbal_load strategy=session || die "insmod $MPBAL_KO failed: $MPBAL_LOAD_ERR"
	testbed_up --no-offload || die "testbed_up failed"
	routers_acct_setup || die "nft accounting on the routers failed"
	# shellcheck disable=SC2086
	bal_eq_route $WEIGHTS || die "equalize route"
	wait_until 5 eval '[ "$(mpbal_stat "$NS_BAL" conntrack)" = held ]'
	log_test $? "session: strategy $(mpbal_stat "$NS_BAL" strategy), mpbal holds conntrack"
	bal_uplink_ids || die "uplink ids"
	log_info "uplink ids: up1 ${DEV_ID[up1]:-?} up2 ${DEV_ID[up2]:-?} up3 ${DEV_ID[up3]:-?}"
	dst_servers 5001 || die "tcp servers in dst1/dst2"
}

test_failover_admin()
{
	shape_uplinks || { log_test 1 "session: tbf on the uplinks"; return; }
	failover "up3 admin down" 5004 ip -n "$NS_BAL" link set up3 down
	restore_up3
	log_test $? "session: up3 back in service"
}

test_failover_carrier()
{
	shape_uplinks || { log_test 1 "session: tbf on the uplinks"; return; }
	failover "up3 carrier down" 5005 ip -n "$NS_TESTC" link set eth0 down
	restore_up3
	log_test $? "session: up3 back in service after carrier loss"
}

setup
tests_run
mpbal_finish
tests_summary
