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

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=selftests/lib.sh
. "$here/lib.sh"
# shellcheck source=selftests/testbed.sh
. "$here/testbed.sh"
# shellcheck source=selftests/lib_strategy.sh
. "$here/lib_strategy.sh"

require_cmd ip nft jq flowgen mpbalctl insmod rmmod timeout

# UDP: each source sends this many datagrams, one per (address, port) flow.
UDP_PER_SRC=1800

# udp_split W1 W2 W3: both sources send UDP_PER_SRC datagrams to the four
# destinations over 450 ports each, at the same time; the uplink counts
# must match the weights.
udp_split()
{
	local w="$1 $2 $3" tag="$1:$2:$3" a b rc ra rb sent tx ul total exp

	st_eq_route "$@" || { log_test 1 "packet $tag: equalize route"; return; }
	st_snap S0
	st_bg A 60 "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 6000-6449 -n $UDP_PER_SRC -s 64
	st_bg B 60 "$NS_SRCB" flowgen udp -d "$DST_ALL" -p 7000-7449 -n $UDP_PER_SRC -s 64
	st_wait A; ra=$?
	st_wait B; rb=$?
	st_snap S1
	a=$(st_flowgen_sent "$(st_out A)")
	b=$(st_flowgen_sent "$(st_out B)")
	sent=$((a + b))
	tx=$(st_d3 S0 S1 tx)
	ul=$(st_d3 S0 S1 u packets)
	# shellcheck disable=SC2086
	total=$(st_sum $tx)
	exp=$(st_expect "$w" "$total")
	log_info "packet $tag: sent srcA $a srcB $b; link tx up1/up2/up3: $tx (total $total, expected $exp); mpbal uplinks: $ul"

	rc=0
	[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ] && [ "$sent" -eq $((2 * UDP_PER_SRC)) ] || rc=1
	[ "$total" -eq "$sent" ] || rc=1
	log_test $rc "packet $tag: all $sent UDP datagrams left by the uplinks ($total)" \
		"flowgen: $(st_out A) / $(st_out B)"

	st_within_pct "$tx" "$w" 1
	log_test $? "packet $tag: up1/up2/up3 $tx of $total within 1% of $exp"

	[ "$ul" = "$tx" ]
	log_test $? "packet $tag: mpbal uplinks table $ul = link tx deltas"
}

# Real TCP under per-packet balancing: 8 connections (4 per source, to dst1
# and dst2) complete (reordering is expected, loss is not), their segments
# split 1:2:3, and each one's packets used all three uplinks (counted per
# 4-tuple on the routers).
tcp_transfers()
{
	local ra rb rc out tuples n bad=0 k r line tx total
	local -A seen=()

	st_eq_route 1 2 3 || { log_test 1 "packet tcp: equalize route"; return; }
	ip netns exec "$NS_DST1" flowgen tcp-server -p 5001 -D >/dev/null &&
		ip netns exec "$NS_DST2" flowgen tcp-server -p 5001 -D >/dev/null ||
		{ log_test 1 "packet tcp: servers start in dst1 and dst2"; return; }
	st_snap S0
	st_bg A 90 "$NS_SRCA" flowgen tcp -d "$DST1_IP1" -p 5001 -c 4 -P 4 -b 400000 -t 80
	st_bg B 90 "$NS_SRCB" flowgen tcp -d "$DST2_IP1" -p 5001 -c 4 -P 4 -b 400000 -t 80
	st_wait A; ra=$?
	st_wait B; rb=$?
	st_snap S1
	log_info "srcA: $(st_out A)"
	log_info "srcB: $(st_out B)"
	log_info "packet tcp: link tx up1/up2/up3 $(st_d3 S0 S1 tx), mpbal steered $(st_d S0 S1 s:steered)"
	for out in "$NS_SRCA" "$NS_SRCB"; do
		# Retransmissions are expected (reordering looks like loss to
		# the sender); reported only.
		log_info "${out#"$NS_PREFIX"} $(ip netns exec "$out" awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) c[i] = $i; h = 1 } else for (i = 1; i <= NF; i++) if (c[i] == "RetransSegs" || c[i] == "OutSegs") printf "%s %s ", c[i], $i }' /proc/net/snmp)"
	done
	[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ]
	log_test $? "packet tcp: 8 x 400 kB transfers srcA->dst1, srcB->dst2 complete"
	# The uplinks carry only the data direction (replies come back in
	# through up1/up2): per-packet WRR holds for TCP segments too.
	tx=$(st_d3 S0 S1 tx)
	# shellcheck disable=SC2086
	total=$(st_sum $tx)
	st_within_pct "$tx" "1 2 3" 1
	log_test $? "packet tcp: segments per uplink $tx of $total within 1% of $(st_expect "1 2 3" "$total")"

	# Data direction only (port 5001 as destination).
	tuples=$(st_acct_dump | awk '$2 == "t" && $6 == 5001 { print $1, $3 ":" $4 ">" $5 ":" $6 }') ||
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

st_load strategy=packet || die "insmod $ST_KO failed"
st_up --no-offload || die "testbed_up failed"
st_acct_setup || die "nft accounting on the routers failed"
[ "$(st_stat strategy)" = packet ]
log_test $? "packet: strategy=packet from the module parameter"

udp_split 1 1 1
udp_split 1 2 3
tcp_transfers

tests_summary
