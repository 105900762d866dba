#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The packet strategy on the thesis testbed: every packet takes the next
# uplink in weighted round-robin order. UDP over many ports from both
# sources splits exactly by weight (1:1:1 and 1:2:3, within 1 % of the
# total, on the balancer's link counters, cross-checked with mpbal's uplink
# table), and real TCP transfers, whose packets are sprayed over all
# uplinks, still complete. Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_strategy_packet.sh
set -u

# Independent: each test adds the equalize route it needs.
ALL_TESTS="
	test_udp_111
	test_udp_123
	test_tcp
"

# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

mpbal_init ip nft jq flowgen mpbalctl timeout

# UDP: each source sends this many datagrams, one per (address, port) flow.
UDP_PER_SRC=1800

# udp_split W1 W2 W3: both sources send UDP_PER_SRC datagrams to the four
# destinations over 450 ports each, at the same time; the uplink counts
# must match the weights.
udp_split()
{
	local w="$1 $2 $3" tag="$1:$2:$3" a b rc ra rb sent tx ul total exp

	bal_eq_route "$@" || { log_test 1 "packet $tag: equalize route"; return; }
	bal_snap S0
	bg_start A 60 "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 6000-6449 -n "$UDP_PER_SRC" -s 64
	bg_start B 60 "$NS_SRCB" flowgen udp -d "$DST_ALL" -p 7000-7449 -n "$UDP_PER_SRC" -s 64
	bg_wait A; ra=$?
	bg_wait B; rb=$?
	bal_snap S1
	a=$(flowgen_sent "$(bg_out A)")
	b=$(flowgen_sent "$(bg_out B)")
	sent=$((a + b))
	tx=$(snap_d3 S0 S1 tx)
	ul=$(snap_d3 S0 S1 u packets)
	# shellcheck disable=SC2086
	total=$(sum $tx)
	exp=$(shares_expect "$w" "$total")
	log_info "packet $tag: sent srcA $a srcB $b; link tx up1/up2/up3: $tx (total $total, expected $exp); mpbal uplinks: $ul"

	rc=0
	[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ] && [ "$sent" -eq $((2 * UDP_PER_SRC)) ] || rc=1
	[ "$total" -eq "$sent" ] || rc=1
	log_test $rc "packet $tag: all $sent UDP datagrams left by the uplinks ($total)" \
		"flowgen: $(bg_out A) / $(bg_out B)"

	shares_within "$tx" "$w" 1%
	log_test $? "packet $tag: up1/up2/up3 $tx of $total within 1% of $exp"

	[ "$ul" = "$tx" ]
	log_test $? "packet $tag: mpbal uplinks table $ul = link tx deltas"
}

# Real TCP under per-packet balancing: 8 connections (4 per source, to dst1
# and dst2) complete (reordering is expected, loss is not), their segments
# split 1:2:3, and each one's packets used all three uplinks (counted per
# 4-tuple on the routers).
test_tcp()
{
	local ra rb rc out tuples n bad=0 k r line tx total
	local -A seen=()

	bal_eq_route 1 2 3 || { log_test 1 "packet tcp: equalize route"; return; }
	dst_servers 5001 || { log_test 1 "packet tcp: servers start in dst1 and dst2"; return; }
	bal_snap S0
	bg_start A 90 "$NS_SRCA" flowgen tcp -d "$DST1_IP1" -p 5001 -c 4 -P 4 -b 400000 -t 80
	bg_start B 90 "$NS_SRCB" flowgen tcp -d "$DST2_IP1" -p 5001 -c 4 -P 4 -b 400000 -t 80
	bg_wait A; ra=$?
	bg_wait B; rb=$?
	bal_snap S1
	log_info "srcA: $(bg_out A)"
	log_info "srcB: $(bg_out B)"
	log_info "packet tcp: link tx up1/up2/up3 $(snap_d3 S0 S1 tx), mpbal steered $(snap_d S0 S1 s:steered)"
	for out in "$NS_SRCA" "$NS_SRCB"; do
		# Retransmissions are expected (reordering looks like loss to
		# the sender); reported only.
		log_info "${out#"$NS_PREFIX"} $(ip netns exec "$out" awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) c[i] = $i; h = 1 } else for (i = 1; i <= NF; i++) if (c[i] == "RetransSegs" || c[i] == "OutSegs") printf "%s %s ", c[i], $i }' /proc/net/snmp)"
	done
	[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ]
	log_test $? "packet tcp: 8 x 400 kB transfers srcA->dst1, srcB->dst2 complete"
	# The uplinks carry only the data direction (replies come back in
	# through up1/up2): per-packet WRR holds for TCP segments too.
	tx=$(snap_d3 S0 S1 tx)
	# shellcheck disable=SC2086
	total=$(sum $tx)
	shares_within "$tx" "1 2 3" 1%
	log_test $? "packet tcp: segments per uplink $tx of $total within 1% of $(shares_expect "1 2 3" "$total")"

	# Data direction only (port 5001 as destination).
	tuples=$(routers_acct_dump | awk '$2 == "t" && $6 == 5001 { print $1, $3 ":" $4 ">" $5 ":" $6 }') ||
		{ log_test 1 "packet tcp: router accounting readable"; return; }
	while read -r r k; do
		[ -n "$k" ] && seen[$k]+="$r"
	done <<<"$tuples"
	n=${#seen[@]}
	line=""
	for k in "${!seen[@]}"; do
		[[ ${seen[$k]} == *1* && ${seen[$k]} == *2* && ${seen[$k]} == *3* ]] || {
			bad=$((bad + 1))
			line+=" $k:${seen[$k]}"
		}
	done
	rc=0
	[ "$n" -eq 8 ] && [ "$bad" -eq 0 ] || rc=1
	log_test $rc "packet tcp: each of $n connections (want 8) used all three uplinks" \
		"connections not on all uplinks:$line"
}

setup()
{
	mpbal_load strategy=packet || die "insmod $MPBAL_KO failed: $MPBAL_LOAD_ERR"
	testbed_up --no-offload || die "testbed_up failed"
	routers_acct_setup || die "nft accounting on the routers failed"
	[ "$(mpbal_stat "$NS_BAL" strategy)" = packet ]
	log_test $? "packet: strategy=packet from the module parameter"
}

test_udp_111()
{
	udp_split 1 1 1
}

test_udp_123()
{
	udp_split 1 2 3
}

setup
tests_run
mpbal_finish
tests_summary
