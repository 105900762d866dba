#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A reduced `make thesis` (selftests/thesis.sh; the full one runs on the
# bench kernel) on the debug test kernel: the shaped thesis testbed (up1 1
# Mbit, up2 and up3 10 Mbit) with MTU 9000 and offloads off, stock ECMP with
# the L4 hash (mpbal not loaded) and the packet and bandwidth strategies,
# weights 1 1 1:
#  1. calibration: one bulk TCP transfer pinned to each uplink, all three
#     at once (the load the workloads put on the guest; make thesis also
#     measures each alone), carries >= 95% of the tbf rate (the uplink's tx
#     bytes over 4 s). The debug kernel passes with MTU 9000 (~99%); if it
#     does not, the guest is CPU-bound, nothing after it would mean
#     anything, and the suite stops there;
#  2. a small size (8k, 20 files per source per destination, 160
#     transfers) and a large one (1m, 2 each, 16 transfers) under the three
#     configurations, and the mixed workload (16 concurrent transfers, 31.8
#     MB) under packet and bandwidth: every transfer completes, and each
#     run's goodput is sane: above 0.9 Mbit/s (any placement has at least
#     up1's 1 Mbit/s), at most the 21 Mbit/s the uplinks carry (plus the
#     tbfs' full buckets, 144 kB, which a short run sends at once), and
#     the uplinks sent at least the payload. Stock L4 skips the mixed workload:
#     its makespan there is one hash draw of 16 unequal transfers (34 to
#     200 s), which would add 1.5 min on average to make check and test
#     nothing the large size does not;
#  3. on the large size, packet and bandwidth finish no later than stock
#     L4. Stock ECMP hashes each connection to an uplink, so about a third
#     of the 16 equal transfers (5.6 MB, 45 s) wait for the 1 Mbit uplink.
#     Its hash may leave up1 nearly idle (2 or fewer transfers: p = 6%);
#     such a draw says nothing about balancing and could beat any
#     strategy, so stock L4 runs again (a new draw: TCP's hash of the
#     connection is random; at most twice more, each logged). With 3 or
#     more, stock takes >= 25 s, packet ~10-15 s. (On the mixed workload no
#     such test could be made: with 16 unequal transfers, stock's hash
#     keeps the large ones off up1 often enough, ~15% of runs, to beat
#     packet.)
# Each workload's THESIS: run line is printed as in make thesis (without
# the per-transfer lines).
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_thesis.sh
set -u

# test_calibration needs no module; the workloads set up each configuration
# themselves (th_config), so each runs alone too.
ALL_TESTS="
	test_calibration
	test_small
	test_large
	test_mixed
"

# shellcheck source=selftests/thesis.sh
. "$(dirname "$0")/thesis.sh"

mpbal_init ip tc jq flowgen mpbalctl timeout

CONFIGS=(stock-l4 packet bandwidth)
SMALL=8k
LARGE=1m
# 20 files of SMALL, 2 of LARGE per source per destination (th_count).
export THESIS_COUNTS=20/2
GOODPUT_MIN_BPS=900000
GOODPUT_MAX_BPS=21000000
BUCKETS_BYTES=$(((16 + 64 + 64) * 1024))	# testbed.sh TB_SHAPE_BURSTS
# Stock L4 draws with fewer bytes than 3 LARGE transfers on up1 are redrawn.
STOCK_UP1_MIN=$((3 * 1048576))
TH_XFER_LINES=0

setup()
{
	local s

	th_strategies || die "mpbal: no available_strategies"
	for s in packet bandwidth; do
		[[ " ${TH_STRATEGIES[*]} " == *" $s "* ]] || die "strategy $s not listed (${TH_STRATEGIES[*]})"
	done
	th_setup || die "testbed setup failed"
}

test_calibration()
{
	local l name dev rate bps pct v cpu rc

	TH_CALIB=()
	th_stock || die "mpbal could not be unloaded"
	th_calib_one base-together "up1 up2 up3" "$DST1_IP1 $DST1_IP2 $DST2_IP1" \
		"$NS_SRCA $NS_SRCB $NS_SRCA"
	rc=$?
	for l in "${TH_CALIB[@]}"; do
		read -r name dev rate bps pct v cpu <<<"$l"
		[ "$v" = ok ]
		log_test $? "thesis: calibration ${name#base-}: $dev carries $pct% of $((rate / 1000)) kbit/s (>= $TH_CALIB_PCT%)" \
			"$bps bit/s; guest CPU $cpu%"
	done
	[ "${#TH_CALIB[@]}" -eq 3 ] || log_test 1 "thesis: calibration measured the three uplinks (${#TH_CALIB[@]})"
	# Not link-bound: the workloads would measure the guest's CPU.
	[ "$rc" = 0 ] || die "calibration failed: the guest cannot carry the shaped rates (CPU-bound: a debug kernel on a loaded host, another QEMU?); no workload is run"
}

declare -A MAKESPAN=()

# workload WL "CONFIG.." [REDRAW]: each configuration runs WL; TEST lines
# for completion and goodput per configuration; MAKESPAN[CFG] its makespan
# in ms. REDRAW: stock-l4 runs again (twice at most) while its up1 sent
# less than STOCK_UP1_MIN.
workload()
{
	local wl=$1 cfgs=() redraw=${3:-} c rc gp txb n max

	read -r -a cfgs <<<"$2"
	for c in "${cfgs[@]}"; do
		if ! th_config "$c"; then
			log_test 1 "thesis: $wl $c: configuration set up"
			continue
		fi
		th_run base "$wl" "$c"
		rc=$?
		for ((n = 0; n < 2; n++)); do
			if [ -z "$redraw" ] || [ "$c" != stock-l4 ] || [ "$rc" != 0 ] ||
				[ "${TH_RUN_TXB[0]}" -ge "$STOCK_UP1_MIN" ]; then
				break
			fi
			log_info "$wl stock-l4: its hash left up1 ${TH_RUN_TXB[0]} B (< $STOCK_UP1_MIN): a lucky draw, run again"
			th_run base "$wl" "$c"
			rc=$?
		done
		MAKESPAN[$c]=$TH_RUN_MAKESPAN
		[ "$rc" = 0 ] && [ "$TH_RUN_N" -gt 0 ]
		log_test $? "thesis: $wl $c: all $TH_RUN_N transfers completed ($TH_RUN_FAILED failed or timed out)"
		gp=0
		[ "$TH_RUN_MAKESPAN" -gt 0 ] && gp=$((TH_RUN_PAYLOAD * 8 * 1000 / TH_RUN_MAKESPAN))
		txb=$(sum "${TH_RUN_TXB[@]}")
		# At most the rate times the makespan plus the full buckets.
		max=$((GOODPUT_MAX_BPS * TH_RUN_MAKESPAN / 8000 + BUCKETS_BYTES))
		[ "$gp" -ge "$GOODPUT_MIN_BPS" ] && [ "$TH_RUN_PAYLOAD" -le "$max" ] &&
			[ "$txb" -ge "$TH_RUN_PAYLOAD" ]
		log_test $? "thesis: $wl $c: goodput $((gp / 1000)) kbit/s >= 900 and <= 21000 (+ buckets), uplinks sent >= payload" \
			"makespan $TH_RUN_MAKESPAN ms, payload $TH_RUN_PAYLOAD B (at most $max), uplinks sent $txb B"
	done
}

# not_later WL CFG: CFG's makespan <= stock-l4's.
not_later()
{
	local a=${MAKESPAN[$2]:-} b=${MAKESPAN[stock-l4]:-}

	[ -n "$a" ] && [ -n "$b" ] && [ "$a" -gt 0 ] && [ "$a" -le "$b" ]
	log_test $? "thesis: $1: $2's makespan ${a:-?} ms <= stock L4's ${b:-?} ms"
}

test_small()
{
	MAKESPAN=()
	workload "$SMALL" "${CONFIGS[*]}"
}

test_large()
{
	MAKESPAN=()
	workload "$LARGE" "${CONFIGS[*]}" redraw
	not_later "$LARGE" packet
	not_later "$LARGE" bandwidth
}

test_mixed()
{
	MAKESPAN=()
	workload mixed "packet bandwidth"
	log_info "mixed makespans: packet ${MAKESPAN[packet]:-?} ms, bandwidth ${MAKESPAN[bandwidth]:-?} ms" \
		"(a perfect balancer: 12100 ms)"
}

setup
tests_run
mpbal_finish
tests_summary
