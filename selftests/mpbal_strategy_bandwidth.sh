#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The bandwidth strategy and its rate estimator on the shaped thesis
# testbed (tbf on the balancer's uplinks: up1 1 Mbit, up2 and up3 10 Mbit),
# with net.mpbal.bw_interval_ms=250, bw_ewma_log=2 and the capacities
# configured with `mpbalctl link set DEV capacity RATE`:
#  1. saturated links: the estimator's rate_bps is within 10 % of each tbf
#     rate (packet strategy 1:10:10, UDP flood from both sources);
#  2. a load well below 10 Mbit never uses the 1 Mbit link (a 10 Mbit link
#     always has more headroom);
#  3. a load above what the 10 Mbit links carry does use it;
#  4. packets go to the link with the most headroom: with background load
#     (not balanced: a plain /32 route) on one 10 Mbit link, the balanced
#     traffic goes to the other one, whose reported headroom is larger.
# The routers drop the test datagrams (nft), so only the balancer works.
# The floods are paced (2 x 500 datagrams/s of 4000 bytes, 32 Mbit/s) over
# a 9000-byte MTU between the sources and the routers: a TCG guest on a
# busy host manages only ~1000 packets/s, so 1200-byte packets could not
# fill 21 Mbit/s, and an unpaced flood starves the tbf dequeue (softirq)
# so that the links no longer carry their rate.
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_strategy_bandwidth.sh
set -u

# test_estimator measures under the packet strategy; the others need the
# bandwidth strategy (test_low_load switches to it; run alone, they do).
ALL_TESTS="
	test_estimator
	test_low_load
	test_overload
	test_headroom_up3
	test_headroom_up2
"

# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

mpbal_init ip tc nft jq flowgen mpbalctl timeout

SIZE=1200				# UDP payload bytes of paced traffic
FLOOD_SIZE=4000				# ... of floods (MTU 9000)
FLOOD_PPS=500				# per source: 2 x 16 Mbit/s

# readings N: N readings of `mpbalctl -j link show`, 0.5 s apart, in one
# balancer process. Sets RATE[dev] and HEAD[dev] (integer means) and
# RLIST[dev] (the rates read, in kbit/s).
readings()
{
	local out dev rate head n=0
	local -A rs=() hs=()

	# shellcheck disable=SC2016 # expanded by the inner bash
	out=$(bal bash -c 'for ((i = 0; i < $1; i++)); do
			sleep 0.5; mpbalctl -j link show; echo; done' _ "$1" |
		jq -r '.[] | "\(.dev) \(.rate_bps) \(.headroom_bps // 0)"')
	declare -gA RATE=() HEAD=() RLIST=()
	while read -r dev rate head; do
		[ -n "$dev" ] || continue
		rs[$dev]=$((${rs[$dev]:-0} + rate))
		hs[$dev]=$((${hs[$dev]:-0} + head))
		RLIST[$dev]+="$((rate / 1000)) "
		[ "$dev" = up1 ] && n=$((n + 1))
	done <<<"$out"
	[ "$n" -gt 0 ] || return 1
	for dev in "${!rs[@]}"; do
		RATE[$dev]=$((rs[$dev] / n))
		HEAD[$dev]=$((hs[$dev] / n))
	done
}

# flood VAR NS N: N datagrams of FLOOD_SIZE bytes at FLOOD_PPS to the four
# destinations over 64 ports.
flood()
{
	bg_start "$1" 120 "$2" flowgen udp -d "$DST_ALL" -p 20000-20063 -n "$3" -s "${4:-$FLOOD_SIZE}" \
		-r "$FLOOD_PPS"
}

setup()
{
	testbed_shaped_load bandwidth packet 1 10 10
}

# 1. Estimator under saturation: packet strategy 1:10:10, both sources
# flood (32 Mbit/s, above the 21 Mbit/s the three links carry). Once every tbf
# drops (the link is saturated), 2 s for the estimator to converge, then
# six readings.
test_estimator()
{
	local t0 t1 rr rc i dev meas txb

	TBF_DROPS=()
	bal_strategy packet
	flood A "$NS_SRCA" 20000
	flood B "$NS_SRCB" 20000
	t0=$(now_ms)
	tbf_saturated
	wait_until 30 tbf_saturated
	log_test $? "bandwidth: flood saturates up1, up2 and up3 (every tbf dropping) after $(($(now_ms) - t0)) ms"
	sleep 2
	bal_snap S0
	t0=$(now_ms)
	readings 6
	rr=$?
	bal_snap S1
	t1=$(now_ms)
	bg_stop A
	bg_stop B
	read -r -a txb <<<"$(snap_d3 S0 S1 txb)"
	rc=$rr
	for i in 0 1 2; do
		dev=up$((i + 1))
		meas=$((txb[i] * 8 * 1000 / (t1 - t0)))
		log_info "saturated $dev: rate_bps mean ${RATE[$dev]:-?} (readings kbit/s: ${RLIST[$dev]:-}), link tx $meas bit/s, tbf ${TB_SHAPE_BPS[i]}"
		within_percent "${RATE[$dev]:-0}" "${TB_SHAPE_BPS[i]}" 90 110 || rc=1
	done
	log_test $rc "bandwidth: estimator under saturation within 10% of tbf: up1 ${RATE[up1]:-?} up2 ${RATE[up2]:-?} up3 ${RATE[up3]:-?} bit/s"
}

# 2. Bandwidth strategy, ~3.5 Mbit/s: the 1 Mbit link is never used.
test_low_load()
{
	local ra ul tx sent u t

	bal_quiesce
	log_test $? "bandwidth: estimates back below 100 kbit/s when idle"
	bal_strategy bandwidth
	log_test $? "bandwidth: strategy set bandwidth"
	bal_snap S0
	bg_start A 60 "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 21000-21063 -n 1800 -s "$SIZE" -r 360
	sleep 2
	readings 4
	bg_wait A
	ra=$?
	bal_snap S1
	ul=$(snap_d3 S0 S1 u packets)
	tx=$(snap_d3 S0 S1 tx)
	sent=$(flowgen_sent "$(bg_out A)")
	read -r -a u <<<"$ul"
	read -r -a t <<<"$tx"
	log_info "low load: $(bg_out A)"
	log_info "low load: steered up1/up2/up3 $ul, link tx $tx; headroom up1 ${HEAD[up1]:-?} up2 ${HEAD[up2]:-?} up3 ${HEAD[up3]:-?} bit/s"
	[ "$ra" -eq 0 ] && [ "${u[0]}" -eq 0 ] && [ "${t[0]}" -eq 0 ]
	log_test $? "bandwidth: 3.5 Mbit/s offered: 1 Mbit up1 never used (steered ${u[0]}, tx ${t[0]})"
	[ "$ra" -eq 0 ] && [ $((u[1] + u[2])) -eq "$sent" ] && [ "$sent" -eq 1800 ]
	log_test $? "bandwidth: 3.5 Mbit/s offered: all $sent datagrams went to the 10 Mbit links ($((u[1] + u[2])))"
}

# 3. Above the 10 Mbit links' capacity the 1 Mbit link gets traffic too:
# both sources flood (8000-byte datagrams, 64 Mbit/s nominal) for ~6 s; the
# offered load is what the balancer received from them (s1, s2 rx bytes).
# Large datagrams keep it above the 21 Mbit/s the links carry even when a
# slow guest sends at well under FLOOD_PPS (a CI run saw 630 of 1000 pps).
test_overload()
{
	local t0 t1 offered ul tx u

	bal_need_strategy bandwidth
	bal_snap S0
	t0=$(now_ms)
	flood A "$NS_SRCA" 10000 8000
	flood B "$NS_SRCB" 10000 8000
	sleep 2
	readings 4
	sleep 1
	bal_snap S1
	t1=$(now_ms)
	bg_stop A
	bg_stop B
	offered=$((($(snap_d S0 S1 rxb:s1) + $(snap_d S0 S1 rxb:s2)) * 8 / (t1 - t0) / 1000))
	ul=$(snap_d3 S0 S1 u packets)
	tx=$(snap_d3 S0 S1 tx)
	read -r -a u <<<"$ul"
	log_info "high load: offered $offered Mbit/s over $((t1 - t0)) ms; steered up1/up2/up3 $ul, link tx $tx; rate up1 ${RATE[up1]:-?} up2 ${RATE[up2]:-?} up3 ${RATE[up3]:-?} (kbit/s readings up2: ${RLIST[up2]:-} up3: ${RLIST[up3]:-}); headroom ${HEAD[up1]:-?} ${HEAD[up2]:-?} ${HEAD[up3]:-?}"
	[ "$offered" -gt 21 ]
	log_test $? "bandwidth: overload: offered $offered Mbit/s > 21 Mbit/s the three links carry"
	[ "${u[0]}" -gt 0 ]
	log_test $? "bandwidth: overload: up1 used once the 10 Mbit links are full (steered ${u[0]})"
}

# 4. Most headroom wins. Background (a plain /32 route, not balanced) of
# ~6 Mbit/s on one 10 Mbit link; 1 Mbit/s balanced: it must go to the
# other 10 Mbit link, which mpbal reports with the larger headroom.
headroom_pick()
{
	local busy=$1 gw=$2 other=$3 s rb ra h_busy h_other
	local -a u

	bal_need_strategy bandwidth
	bal_quiesce
	bal ip route replace "$DST2_IP2/32" via "$gw" dev "$busy"
	bg_start B 60 "$NS_SRCB" flowgen udp -d "$DST2_IP2" -p 23000-23063 -n 3600 -s "$SIZE" -r 625
	bg_start A 60 "$NS_SRCA" flowgen udp -d "$DST1_IP1,$DST1_IP2,$DST2_IP1" -p 22000-22063 -n 600 -s "$SIZE" -r 100
	sleep 2
	bal_snap S0
	readings 5
	bal_snap S1
	bg_wait A; ra=$?
	bg_wait B; rb=$?
	read -r -a u <<<"$(snap_d3 S0 S1 u packets)"
	s=$(sum "${u[@]}")
	h_busy=${HEAD[$busy]:-0}
	h_other=${HEAD[$other]:-0}
	log_info "background on $busy: steered in window up1/up2/up3 ${u[*]} (of $s); headroom up1 ${HEAD[up1]:-?} up2 ${HEAD[up2]:-?} up3 ${HEAD[up3]:-?}; rate up1 ${RATE[up1]:-?} up2 ${RATE[up2]:-?} up3 ${RATE[up3]:-?}; link tx $(snap_d3 S0 S1 tx)"
	log_info "background on $busy: $(bg_out A) / $(bg_out B)"
	local io=${other#up} ib=${busy#up}
	[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ] && [ "$s" -gt 0 ] &&
		[ "$h_other" -gt "$h_busy" ] && [ "$h_other" -gt "${HEAD[up1]:-0}" ] &&
		[ "${u[io - 1]}" -gt "${u[ib - 1]}" ] && [ "${u[io - 1]}" -gt "${u[0]}" ]
	log_test $? "bandwidth: busy $busy: $other has most headroom ($h_other > $h_busy, up1 ${HEAD[up1]:-?}) and the largest share (${u[io - 1]} of $s)"
	bal ip route del "$DST2_IP2/32"
}

test_headroom_up3()
{
	headroom_pick up3 "$UP3_GW" up2
}

test_headroom_up2()
{
	headroom_pick up2 "$UP2_GW" up3
}

setup
tests_run
mpbal_finish
tests_summary
