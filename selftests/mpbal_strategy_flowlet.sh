#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The flowlet strategy on the thesis testbed (three uplinks, capacities
# configured 10 Mbit each, equal weights):
#  1. a flow whose packets are closer than net.mpbal.flowlet_gap_us keeps
#     one uplink: 200 datagrams 5 ms apart with a 10 s gap reach exactly
#     one router, and mpbal counts one new choice and 199 remembered;
#  2. the same flow with a gap of 100 us (the minimum) starts a flowlet per
#     packet, and the flowlets spread over the three uplinks;
#  3. a pause longer than the gap moves the flow: two bursts 1 s apart
#     with a 100 ms gap each reach one router, and the second goes to
#     another uplink (the first one's load shows in its estimate);
#  3b. with the uplinks' qdiscs holding a flow's packets, a pause longer
#     than the gap moves it only with net.mpbal.flowlet_queue_wait=0;
#  4. no reordering: with netem delays of 5, 20 and 40 ms on the paths, TCP
#     transfers see reordering under the packet strategy (the test could
#     fail) and at most 10 % of that under flowlet (default gap, 50 ms).
#  5. the same paths with the uplinks shaped as in the thesis (tbf
#     1/10/10 Mbit on the balancer): flowlet finishes no later than packet
#     and session (reordering is reported, see the test);
#  6. bad gaps are refused and change nothing (mpbal_sysctl.sh checks the
#     bounds; here the strategy keeps its flows across a failed write).
# The routers count the datagrams per destination (nft); the destinations
# answer them with ICMP port unreachable, which no test counts.
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_strategy_flowlet.sh
set -u

ALL_TESTS="
	test_within_gap
	test_tiny_gap_spreads
	test_moves_after_gap
	test_queue_wait
	test_no_reordering
	test_shaped
"

# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

mpbal_init ip tc nft jq flowgen mpbalctl timeout

GAP=/proc/sys/net/mpbal/flowlet_gap_us
PORT=7300

setup()
{
	mpbal_load strategy=flowlet || die "insmod $MPBAL_KO failed: $MPBAL_LOAD_ERR"
	testbed_up --no-offload || die "testbed_up failed"
	routers_acct_setup || die "nft accounting on the routers"
	dst_servers "$PORT" || die "TCP servers"
	bal_eq_route 1 1 1 || die "equalize route"
	bal sysctl -qw net.mpbal.bw_interval_ms=250 net.mpbal.bw_ewma_log=2
	log_test $? "flowlet: net.mpbal.bw_interval_ms=250 bw_ewma_log=2"
	bal_capacities 10000000 10000000 10000000
	log_test $? "flowlet: capacities 10mbit each: $BAL_CAPS"
	[ "$(bal cat "$GAP")" = 50000 ]
	log_test $? "flowlet: flowlet_gap_us defaults to 50000"
}

# per_router DADDR: "n1 n2 n3", the datagrams to DADDR each router counted.
per_router()
{
	routers_acct_dump | awk -v d="$1" '
		$2 == "d" && $3 == d { n[$1] = $4 }
		END { print n[1] + 0, n[2] + 0, n[3] + 0 }'
}

# burst DADDR SPORT N PPS: N datagrams of one flow (fixed source and
# destination port) from srcA.
burst()
{
	ip netns exec "$NS_SRCA" flowgen udp -d "$1" -p 20001 -S "$2" -n "$3" -s 1000 -r "$4" >/dev/null
}

# one_router "n1 n2 n3" N: exactly one router counted N, the others 0;
# ONE_AT is its number (1-3).
one_router()
{
	local c i nz=0

	read -r -a c <<<"$1"
	ONE_AT=0
	for i in 0 1 2; do
		[ "${c[i]}" -eq 0 ] && continue
		nz=$((nz + 1))
		[ "${c[i]}" -eq "$2" ] && ONE_AT=$((i + 1))
	done
	[ "$nz" -eq 1 ] && [ "$ONE_AT" -ne 0 ]
}

# 1. 10 s gap, 200 datagrams at 200/s (5 ms apart): one flowlet.
test_within_gap()
{
	local c

	bal_need_strategy flowlet
	bal sysctl -qw net.mpbal.flowlet_gap_us=10000000
	log_test $? "flowlet: flowlet_gap_us=10000000 accepted"
	bal_snap S0
	burst "$DST1_IP1" 40001 200 200
	bal_snap S1
	c=$(per_router "$DST1_IP1")
	one_router "$c" 200
	log_test $? "flowlet: 200 datagrams 5 ms apart, gap 10 s: one router (routers $c)"
	[ "$(snap_d S0 S1 s:new_choices)" -eq 1 ] && [ "$(snap_d S0 S1 s:remembered)" -eq 199 ]
	log_test $? "flowlet: one new choice, 199 remembered (new $(snap_d S0 S1 s:new_choices), remembered $(snap_d S0 S1 s:remembered))"
	# A bad write changes nothing.
	! bal sysctl -qw net.mpbal.flowlet_gap_us=50 2>/dev/null && [ "$(bal cat "$GAP")" = 10000000 ]
	log_test $? "flowlet: flowlet_gap_us=50 (below 100) refused, gap unchanged"
}

# 2. 100 us gap, the same pacing: every datagram is a flowlet of its own,
# chosen by capacity share: all three uplinks carry about a third.
test_tiny_gap_spreads()
{
	local c n i rc=0

	bal_need_strategy flowlet
	bal sysctl -qw net.mpbal.flowlet_gap_us=100
	bal_snap S0
	burst "$DST1_IP2" 40002 300 200
	bal_snap S1
	c=$(per_router "$DST1_IP2")
	read -r -a n <<<"$c"
	for i in 0 1 2; do
		[ "${n[i]}" -ge 60 ] || rc=1
	done
	[ "$(sum "${n[@]}")" -eq 300 ] || rc=1
	log_test $rc "flowlet: 300 datagrams 5 ms apart, gap 100 us: every router at least 60 (routers $c)"
	[ "$(snap_d S0 S1 s:new_choices)" -ge 290 ]
	log_test $? "flowlet: gap 100 us: a new choice per datagram ($(snap_d S0 S1 s:new_choices) of 300)"
}

# 3. 100 ms gap: two bursts of 50 datagrams 2 ms apart, 1 s between them.
# Each burst is one flowlet; the second leaves the first's uplink, whose
# estimate now carries the first burst. (The gap is far above the 2 ms
# spacing: a TCG guest may stall for tens of ms.)
test_moves_after_gap()
{
	local c1 c2 a rc x y

	bal_need_strategy flowlet
	bal sysctl -qw net.mpbal.flowlet_gap_us=100000
	bal_quiesce
	burst "$DST2_IP1" 40003 50 500
	c1=$(per_router "$DST2_IP1")
	one_router "$c1" 50
	rc=$?
	a=$ONE_AT
	sleep 1
	burst "$DST2_IP1" 40003 50 500
	c2=$(per_router "$DST2_IP1")
	log_test $rc "flowlet: burst 1 (50 datagrams 2 ms apart, gap 100 ms) on one router (routers $c1)"
	# The second burst adds 50 on exactly one other router.
	read -r -a x <<<"$c1"
	read -r -a y <<<"$c2"
	one_router "$((y[0] - x[0])) $((y[1] - x[1])) $((y[2] - x[2]))" 50 && [ "$ONE_AT" -ne "$a" ]
	log_test $? "flowlet: burst 2 after 1 s moved to another router (router $a, then $ONE_AT; routers $c2)"
}

# 3b. flowlet_queue_wait: bursts of 400 datagrams of 1400 bytes and of 10,
# 300 ms apart (gap 100 ms), over tbfs of 1 Mbit/s (capacities alike): the
# first burst still waits seconds in its uplink's qdisc when the second
# comes (the source sends ~250/s on TCG, the tbf drains 87/s). With the wait (the default)
# the second stays behind it on the same router and mpbal counts a hold;
# with flowlet_queue_wait=0 it moves, and nothing is held.
test_queue_wait()
{
	local wait c0 c1 x y d rc

	bal_need_strategy flowlet
	bal sysctl -qw net.mpbal.flowlet_gap_us=100000
	for d in "${TB_UPLINKS[@]}"; do
		tc -n "$NS_BAL" qdisc replace dev "$d" root tbf rate 1mbit burst 2k latency 10s || return 1
	done
	bal_capacities 1000000 1000000 1000000
	log_test $? "flowlet: tbf 1 Mbit/s on every uplink, capacities alike: $BAL_CAPS"
	for wait in 1 0; do
		bal sysctl -qw net.mpbal.flowlet_queue_wait=$wait
		bal_quiesce
		bal_snap S0
		c0=$(per_router "$DST2_IP2")
		ip netns exec "$NS_SRCA" flowgen udp -d "$DST2_IP2" -p 20001 -S $((40005 + wait)) \
			-n 400 -s 1400 -r 2000 >/dev/null
		sleep 0.3
		burst "$DST2_IP2" $((40005 + wait)) 10 1000
		# Both bursts through the tbfs (4.7 s at 1 Mbit/s).
		sleep 5
		c1=$(per_router "$DST2_IP2")
		bal_snap S1
		read -r -a x <<<"$c0"
		read -r -a y <<<"$c1"
		d="$((y[0] - x[0])) $((y[1] - x[1])) $((y[2] - x[2]))"
		if [ "$wait" = 1 ]; then
			one_router "$d" 410 && [ "$(snap_d S0 S1 s:flowlet_held)" -ge 1 ]
			rc=$?
		else
			! one_router "$d" 410 && [ "$(snap_d S0 S1 s:flowlet_held)" = 0 ] &&
				[ "$(snap_d S0 S1 s:flowlet_moves)" -ge 1 ]
			rc=$?
		fi
		log_test $rc "flowlet: flowlet_queue_wait=$wait: 400 + 10 datagrams 300 ms apart: routers $d, held $(snap_d S0 S1 s:flowlet_held), moves $(snap_d S0 S1 s:flowlet_moves)"
	done
	bal sysctl -qw net.mpbal.flowlet_queue_wait=1
	rc=0
	for d in "${TB_UPLINKS[@]}"; do
		tc -n "$NS_BAL" qdisc del dev "$d" root || rc=1
	done
	bal_capacities 10000000 10000000 10000000 || rc=1
	log_test $rc "flowlet: tbfs removed, capacities 10 Mbit again"
}

# transfer_reorder STRATEGY [N [BYTES]]: TCP transfers from srcA and srcB
# (N x BYTES each, N at a time; default 8 x 512 KB) under STRATEGY; REORDER
# and RETRANS are what the sources' TCP counted meanwhile, TOOK_MS how long
# the slower source took.
transfer_reorder()
{
	local r0 t0 ra rb n=${2:-8} b=${3:-524288}

	bal_strategy "$1" || return 1
	r0=$(($(tcp_reorder "$NS_SRCA") + $(tcp_reorder "$NS_SRCB")))
	t0=$(($(tcp_retrans "$NS_SRCA") + $(tcp_retrans "$NS_SRCB")))
	bg_start A 120 "$NS_SRCA" flowgen tcp -d "$DST1_IP1" -p "$PORT" -c "$n" -P "$n" -b "$b" -t 100
	bg_start B 120 "$NS_SRCB" flowgen tcp -d "$DST2_IP1" -p "$PORT" -c "$n" -P "$n" -b "$b" -t 100
	bg_wait A
	ra=$?
	bg_wait B
	rb=$?
	TOOK_MS=$( (bg_out A; bg_out B) | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' |
		awk '$1 * 1000 > m { m = $1 * 1000 } END { printf "%d", m }')
	REORDER=$(($(tcp_reorder "$NS_SRCA") + $(tcp_reorder "$NS_SRCB") - r0))
	RETRANS=$(($(tcp_retrans "$NS_SRCA") + $(tcp_retrans "$NS_SRCB") - t0))
	log_info "$1 over 5/20/40 ms${SHAPED:+, $SHAPED}: $(bg_out A) / $(bg_out B); reordering $REORDER, retransmitted $RETRANS"
	[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ]
}

# 4. Paths of 5, 20 and 40 ms: per packet, a flow's segments overtake each
# other; per flowlet (50 ms gap, above the 35 ms spread) they do not.
test_no_reordering()
{
	local pr fr

	bal sysctl -qw net.mpbal.flowlet_gap_us=50000
	testbed_delay 5ms 20ms 40ms
	log_test $? "flowlet: netem 5/20/40 ms on the paths via testa/testb/testc"
	transfer_reorder packet
	log_test $? "flowlet: packet strategy: 2 x 8 TCP transfers of 512 KB over 5/20/40 ms delivered"
	pr=$REORDER
	[ "$pr" -ge 20 ]
	log_test $? "flowlet: packet strategy reorders over 5/20/40 ms ($pr reordering events >= 20)"
	transfer_reorder flowlet
	log_test $? "flowlet: flowlet strategy: the same transfers delivered"
	fr=$REORDER
	[ $((fr * 10)) -le "$pr" ]
	log_test $? "flowlet: flowlet reordering $fr <= 10% of packet's $pr"
	testbed_delay 0 0 0
}

# 5. The thesis's shaping as well: tbf 1/10/10 Mbit on the balancer's
# uplinks (capacities configured alike), MTU 9000 as in make thesis.
# Checked: flowlet finishes no later than packet and session. Reordering
# is only reported: a saturated tbf holds packets up to 200 ms (a
# 9000-byte packet takes 72 ms on the 1 Mbit uplink), more than the gap,
# so a flow that moves may overtake its own queued packets; and TCP's
# counters here also count the undo of spurious retransmissions, which
# session, that never moves a flow, shows as well. flowlet runs with
# flowlet_queue_wait (the default) and then without it (never a hold).
test_shaped()
{
	local pt st ft wt rc d reo=() held=() moves=()

	bal sysctl -qw net.mpbal.flowlet_gap_us=50000
	testbed_shape && testbed_jumbo && testbed_delay 5ms 20ms 40ms &&
		bal_capacities "${TB_SHAPE_BPS[@]}"
	log_test $? "flowlet: tbf 1/10/10 Mbit on the uplinks, MTU 9000, netem 5/20/40 ms on the paths: $BAL_CAPS"
	SHAPED="tbf 1/10/10 Mbit"
	# flowlet-nowait: flowlet with net.mpbal.flowlet_queue_wait=0.
	for d in packet session flowlet flowlet-nowait; do
		[ "$d" = flowlet-nowait ] && bal sysctl -qw net.mpbal.flowlet_queue_wait=0
		bal_snap S0
		transfer_reorder "${d%-nowait}"
		log_test $? "flowlet: shaped: $d strategy: 2 x 8 TCP transfers of 512 KB delivered ($TOOK_MS ms)"
		bal_snap S1
		reo+=("$d $REORDER")
		held+=("$(snap_d S0 S1 s:flowlet_held)")
		moves+=("$(snap_d S0 S1 s:flowlet_moves)")
		case $d in packet) pt=$TOOK_MS ;; session) st=$TOOK_MS ;; flowlet) ft=$TOOK_MS ;; *) wt=$TOOK_MS ;; esac
	done
	bal sysctl -qw net.mpbal.flowlet_queue_wait=1
	[ "$ft" -le "$pt" ] && [ "$ft" -le "$st" ]
	log_test $? "flowlet: shaped: flowlet took $ft ms <= packet's $pt and session's $st"
	log_info "shaped reordering events (TCP's counters): ${reo[*]}; flowlet-nowait took $wt ms"
	# Without the wait paused flows move and are never held (test_queue_wait
	# shows a hold; here how many depends on the flows' pauses).
	[ "${held[3]}" = 0 ] && [ "${moves[3]}" -gt 0 ]
	log_test $? "flowlet: shaped: without flowlet_queue_wait flowlet_held ${held[3]}, moves ${moves[3]} (with it: held ${held[2]}, moves ${moves[2]})"
	SHAPED=
	testbed_delay 0 0 0
	testbed_jumbo 1500
	rc=$?
	for d in "${TB_UPLINKS[@]}"; do
		tc -n "$NS_BAL" qdisc del dev "$d" root || rc=1
	done
	bal_capacities 10000000 10000000 10000000 || rc=1
	log_test $rc "flowlet: shaping and MTU 9000 removed, capacities 10 Mbit again"
}

SHAPED=
setup
tests_run
mpbal_finish
tests_summary
