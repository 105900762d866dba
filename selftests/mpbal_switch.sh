#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Switching net.mpbal.strategy while traffic flows loses nothing: 8 long
# TCP transfers and a paced UDP stream run while a loop in the balancer
# cycles the strategy through route, packet, session and bandwidth every
# 0.3 s. Every TCP connection completes, every datagram reaches a sink
# (nft counters at dst1/dst2), and afterwards the final strategy (packet)
# behaves as it should: a fresh burst splits 1:2:3 within 1 %.
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_switch.sh
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=selftests/lib.sh
. "$here/lib.sh"
# shellcheck source=selftests/testbed.sh
. "$here/testbed.sh"
# shellcheck source=selftests/lib_strategy.sh
. "$here/lib_strategy.sh"

require_cmd ip nft jq flowgen mpbalctl insmod rmmod timeout

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

st_load strategy=packet || die "insmod $ST_KO failed"
st_up --no-offload || die "testbed_up failed"
sinks || die "nft counters in the sinks"
# shellcheck disable=SC2086
st_eq_route $WEIGHTS || die "equalize route"
for ns in "$NS_DST1" "$NS_DST2"; do
	ip netns exec "$ns" flowgen tcp-server -p 5001 -D >/dev/null || die "tcp server"
done

STOP=$ST_TMP/stop-switching
rx0=$(sink_count)
# The switcher: one bash in the balancer; writes each name with one write(2).
# shellcheck disable=SC2016 # expanded by the inner bash
st_bg SW 180 "$NS_BAL" bash -c 'n=0
	while [ ! -e "$1" ]; do
		for s in route packet session bandwidth; do
			echo "$s" >/proc/sys/net/mpbal/strategy || { echo "write $s failed"; exit 1; }
			n=$((n + 1))
			sleep 0.3
		done
	done
	echo packet >/proc/sys/net/mpbal/strategy || exit 1
	echo "switches=$n"' _ "$STOP"
sleep 1
st_snap S0
t0=$(now_ms)
st_bg A 150 "$NS_SRCA" flowgen tcp -d "$DST1_IP1" -p 5001 -c 4 -P 4 -b 3000000 -t 140
st_bg B 150 "$NS_SRCB" flowgen tcp -d "$DST2_IP2" -p 5001 -c 4 -P 4 -b 3000000 -t 140
st_bg U 60 "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 9000-9063 -n $UDP_N -s 200 -r $UDP_PPS
st_wait A; ra=$?
st_wait B; rb=$?
st_wait U; ru=$?
t1=$(now_ms)
touch "$STOP"
st_wait SW; rs=$?
st_snap S1
rx1=$(sink_count)
sw=$(st_out SW)
[[ $sw =~ switches=([0-9]+) ]] && nsw=${BASH_REMATCH[1]} || nsw=0
log_info "switcher: $sw; traffic ran $((t1 - t0)) ms"
log_info "srcA: $(st_out A)"
log_info "srcB: $(st_out B)"
log_info "udp: $(st_out U)"
log_info "during switching: steered +$(st_d S0 S1 s:steered) remembered +$(st_d S0 S1 s:remembered) new_choices +$(st_d S0 S1 s:new_choices) untracked +$(st_d S0 S1 s:untracked) fallback_no_usable +$(st_d S0 S1 s:fallback_no_usable) reentered +$(st_d S0 S1 s:reentered); link tx $(st_d3 S0 S1 tx)"

[ "$rs" -eq 0 ] && [ "$nsw" -ge 12 ]
log_test $? "switch: strategy switched $nsw times (>= 12, all four strategies) while traffic flowed"
[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ]
log_test $? "switch: all 8 TCP transfers (3 MB each) complete"
sent=$(st_flowgen_sent "$(st_out U)")
got=$((rx1 - rx0))
[ "$ru" -eq 0 ] && [ "$sent" -eq $UDP_N ] && [ "$got" -eq "$sent" ]
log_test $? "switch: UDP loss 0: $got of $sent datagrams reached the sinks"

# The final strategy holds: packet, 1:2:3 on a fresh burst.
strat=$(st_bal cat /proc/sys/net/mpbal/strategy)
[ "$strat" = packet ]
log_test $? "switch: final strategy is packet ($strat)"
st_snap S0
st_bg A 60 "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 7000-7374 -n 1500 -s 64
st_bg B 60 "$NS_SRCB" flowgen udp -d "$DST_ALL" -p 7500-7874 -n 1500 -s 64
st_wait A; ra=$?
st_wait B; rb=$?
st_snap S1
tx=$(st_d3 S0 S1 tx)
# shellcheck disable=SC2086
total=$(st_sum $tx)
log_info "after switching, packet 1:2:3: link tx $tx (total $total, expected $(st_expect "$WEIGHTS" "$total")); mpbal uplinks $(st_d3 S0 S1 u packets)"
[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ] && [ "$total" -eq 3000 ] && st_within_pct "$tx" "$WEIGHTS" 1
log_test $? "switch: afterwards packet 1:2:3 holds: $tx of $total within 1%"

tests_summary
