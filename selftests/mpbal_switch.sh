#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Switching net.mpbal.strategy while traffic flows loses nothing: 8 long
# TCP transfers and a paced UDP stream run while a loop in the balancer
# cycles the strategy through every name in net.mpbal.available_strategies
# every 0.3 s. Every TCP connection completes, every datagram reaches a
# sink (nft counters at dst1/dst2), and afterwards the final strategy
# (packet) behaves as it should: a fresh burst splits 1:2:3 within 1 %.
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_switch.sh
set -u

# test_after_switching checks what test_switching leaves and runs it first
# when run alone.
ALL_TESTS="
	test_switching
	test_after_switching
"

# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

mpbal_init ip nft jq flowgen mpbalctl timeout

WEIGHTS="1 2 3"
UDP_N=3000
UDP_PPS=400

# Sinks count (and drop, so no ICMP goes back) the test datagrams.
sinks()
{
	local ns

	for ns in "$NS_DST1" "$NS_DST2"; do
		ip netns exec "$ns" nft -f - <<-'EOF' || return 1
		table ip sink {
			chain in {
				type filter hook input priority 0; policy accept;
				udp dport 9000-9099 counter drop
			}
		}
		EOF
	done
}

sink_count()
{
	local ns s=0 n

	for ns in "$NS_DST1" "$NS_DST2"; do
		n=$(ip netns exec "$ns" nft -j list chain ip sink in |
			jq '[.nftables[] | select(.rule) | .rule.expr[] | select(.counter) | .counter.packets] | add // 0')
		s=$((s + n))
	done
	echo "$s"
}

setup()
{
	mpbal_load strategy=packet || die "insmod $MPBAL_KO failed: $MPBAL_LOAD_ERR"
	testbed_up --no-offload || die "testbed_up failed"
	sinks || die "nft counters in the sinks"
	# shellcheck disable=SC2086
	bal_eq_route $WEIGHTS || die "equalize route"
	dst_servers 5001 || die "tcp server"
	mpbal_strategies || die "no net.mpbal.available_strategies"
}

SWITCHED=""
test_switching()
{
	local stop=$MPBAL_TMP/stop-switching rx0 rx1 t0 t1 ra rb ru rs sw nsw sent got min

	SWITCHED=1
	rm -f "$stop"
	rx0=$(sink_count)
	# The switcher: one bash in the balancer; writes each name with one
	# write(2).
	# shellcheck disable=SC2016 # expanded by the inner bash
	bg_start SW 180 "$NS_BAL" bash -c 'stop=$1 n=0
		shift
		while [ ! -e "$stop" ]; do
			for s; do
				echo "$s" >/proc/sys/net/mpbal/strategy || { echo "write $s failed"; exit 1; }
				n=$((n + 1))
				sleep 0.3
			done
		done
		echo packet >/proc/sys/net/mpbal/strategy || exit 1
		echo "switches=$n"' _ "$stop" "${MPBAL_STRATEGIES[@]}"
	sleep 1
	bal_snap S0
	t0=$(now_ms)
	bg_start A 150 "$NS_SRCA" flowgen tcp -d "$DST1_IP1" -p 5001 -c 4 -P 4 -b 3000000 -t 140
	bg_start B 150 "$NS_SRCB" flowgen tcp -d "$DST2_IP2" -p 5001 -c 4 -P 4 -b 3000000 -t 140
	bg_start U 60 "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 9000-9063 -n "$UDP_N" -s 200 -r "$UDP_PPS"
	bg_wait A; ra=$?
	bg_wait B; rb=$?
	bg_wait U; ru=$?
	t1=$(now_ms)
	touch "$stop"
	bg_wait SW; rs=$?
	bal_snap S1
	rx1=$(sink_count)
	sw=$(bg_out SW)
	[[ $sw =~ switches=([0-9]+) ]] && nsw=${BASH_REMATCH[1]} || nsw=0
	log_info "switcher: $sw; traffic ran $((t1 - t0)) ms"
	log_info "srcA: $(bg_out A)"
	log_info "srcB: $(bg_out B)"
	log_info "udp: $(bg_out U)"
	log_info "during switching: steered +$(snap_d S0 S1 s:steered) remembered +$(snap_d S0 S1 s:remembered) new_choices +$(snap_d S0 S1 s:new_choices) untracked +$(snap_d S0 S1 s:untracked) fallback_no_usable +$(snap_d S0 S1 s:fallback_no_usable) reentered +$(snap_d S0 S1 s:reentered); link tx $(snap_d3 S0 S1 tx)"

	# Three rounds through every strategy, and at least 12 switches.
	min=$((3 * ${#MPBAL_STRATEGIES[@]}))
	[ "$min" -ge 12 ] || min=12
	[ "$rs" -eq 0 ] && [ "$nsw" -ge "$min" ]
	log_test $? "switch: strategy switched $nsw times (>= $min, all ${#MPBAL_STRATEGIES[@]} strategies: ${MPBAL_STRATEGIES[*]}) while traffic flowed"
	[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ]
	log_test $? "switch: all 8 TCP transfers (3 MB each) complete"
	sent=$(flowgen_sent "$(bg_out U)")
	got=$((rx1 - rx0))
	[ "$ru" -eq 0 ] && [ "$sent" -eq "$UDP_N" ] && [ "$got" -eq "$sent" ]
	log_test $? "switch: UDP loss 0: $got of $sent datagrams reached the sinks"
}

# The final strategy holds: packet, 1:2:3 on a fresh burst.
test_after_switching()
{
	local strat ra rb tx total

	[ -n "$SWITCHED" ] || test_switching
	strat=$(bal cat /proc/sys/net/mpbal/strategy)
	[ "$strat" = packet ]
	log_test $? "switch: final strategy is packet ($strat)"
	bal_snap S0
	bg_start A 60 "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 7000-7374 -n 1500 -s 64
	bg_start B 60 "$NS_SRCB" flowgen udp -d "$DST_ALL" -p 7500-7874 -n 1500 -s 64
	bg_wait A; ra=$?
	bg_wait B; rb=$?
	bal_snap S1
	tx=$(snap_d3 S0 S1 tx)
	# shellcheck disable=SC2086
	total=$(sum $tx)
	log_info "after switching, packet 1:2:3: link tx $tx (total $total, expected $(shares_expect "$WEIGHTS" "$total")); mpbal uplinks $(snap_d3 S0 S1 u packets)"
	[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ] && [ "$total" -eq 3000 ] && shares_within "$tx" "$WEIGHTS" 1%
	log_test $? "switch: afterwards packet 1:2:3 holds: $tx of $total within 1%"
}

setup
tests_run
mpbal_finish
tests_summary
