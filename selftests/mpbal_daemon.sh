#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mpbalctl daemon (mpbald) on the thesis testbed (testbed.sh): health
# probes, failover between tiers, the route guard, its status files and a
# clean stop. The daemon runs in the balancer with selftests/mpbal_daemon.toml
# (see there): the equalize route 10.0.0.0/16 over up1, up2 (tier 1) and
# up3 (tier 2), each probed with ICMP to dst1 and dst2 (10.0.1.1, 10.0.2.1)
# every second, timeout 500 ms, down 3, up 2, reliability 1. The
# destinations get routes back to each uplink's address through that
# uplink's router, so that a router's failure fails its own uplink's
# probes only.
#  1. Start: the file is applied (strategy, capacity, route) and every
#     uplink is probed up; status.json and mpbal.prom say so.
#  2. Dead upstream: testa drops ICMP and everything it would forward,
#     its link staying up. up1 is set down within down x interval +
#     timeout (+ 1 s for TCG), the reason logged; new flows and the flows
#     stored on up1 avoid it while up2 carries on and up3 (tier 2) carries
#     nothing. testb dies too: up2 goes down and up3 takes everything.
#     Both recover: each is up again within up x interval + timeout
#     (+ 1 s), and tier 1 carries the traffic again, up3 nothing.
#  3. Route guard: `ip route replace` without the flag and `ip route del`
#     are undone within 1 s; `ip link del up1` (the kernel flushes the
#     whole route) leaves a route over up2 and up3 within 1 s; a new up1
#     is back in the route within 1 s of getting its address, with its
#     capacity from the file written again.
#  4. A bad file: the daemon exits 2 naming FILE:LINE:COL, and changes
#     nothing.
#  5. SIGTERM: the daemon exits 0 within 2 s, says what it left (an uplink
#     still down stays down), and its last status says it stopped.
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_daemon.sh
set -u

ALL_TESTS="
	test_start
	test_dead_upstream
	test_route_guard
	test_bad_file
	test_sigterm
"

# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

mpbal_init ip nft jq flowgen mpbalctl

CFG=$(dirname "$0")/mpbal_daemon.toml
SD=$MPBAL_TMP/mpbald
DLOG=$MPBAL_TMP/mpbald.log
DPID=""
# The probe settings of $CFG, for the time bounds (ms).
INTERVAL_MS=1000 TIMEOUT_MS=500 DOWN=3 UP=2
SLACK_MS=1000

# daemon_start: mpbalctl daemon in the balancer, in the background; its
# log lines go to DLOG, each after the time it came, "MS LINE" (ms as
# now_ms counts them), so that what it did is timed without polling.
daemon_start()
{
	: >"$DLOG"
	ip netns exec "$NS_BAL" mpbalctl daemon -f "$CFG" --state-dir "$SD" \
		2> >(while IFS= read -r l; do
			t=${EPOCHREALTIME/./}
			printf '%s %s\n' $((t / 1000)) "$l"
		done >>"$DLOG") &
	DPID=$!
}

# logged_after T0 TEXT: ELAPSED = ms from T0 to the first log line of the
# daemon at or after T0 that contains TEXT; fails if none within 5 s.
logged_after()
{
	local deadline ts rest

	deadline=$(($(now_ms) + 5000))
	while :; do
		while read -r ts rest; do
			[ "$ts" -ge "$1" ] 2>/dev/null && [[ $rest == *"$2"* ]] &&
				{ ELAPSED=$((ts - $1)); return 0; }
		done <"$DLOG"
		[ "$(now_ms)" -ge "$deadline" ] && { ELAPSED=never; return 1; }
		sleep 0.1
	done
}

daemon_stop()
{
	[ -n "$DPID" ] || return 0
	kill -TERM "$DPID" 2>/dev/null
	wait_pid_exit 5 "$DPID" || kill -KILL "$DPID" 2>/dev/null
	wait "$DPID" 2>/dev/null
	DPID=""
}

# st [JQ-OPTION..] JQ: a value of the daemon's status.json.
st()
{
	jq -r "$@" "$SD/status.json" 2>/dev/null
}

# bal_sysctl NAME: net.mpbal.NAME in the balancer (NAME as a path under
# /proc/sys/net/mpbal: conf/up1/down). /proc/sys has no per-process view,
# so this is a spawn, unlike ns_read.
bal_sysctl()
{
	ip netns exec "$NS_BAL" cat "$MPBAL_SYSCTL_DIR/$1" 2>/dev/null
}

# health DEV: the probes' verdict for DEV in status.json.
health()
{
	st ".uplinks[] | select(.dev == \"$1\") | .probe.health"
}

# all_probed_up: every uplink has had two rounds and is up.
all_probed_up()
{
	[ "$(st '[.uplinks[] | select(.probe.rounds >= 2 and .probe.health == "up")] | length')" = 3 ]
}

# admin_is DEV 0|1: net.mpbal.conf.DEV.down in the balancer.
admin_is()
{
	[ "$(bal_sysctl "conf/$1/down")" = "$2" ]
}

# wait_admin DEV 0|1 BOUND_MS T0: the daemon logs DEV's transition (to
# down for 1, up for 0) within BOUND_MS of T0, and the sysctl says so.
# ELAPSED = ms from T0 to the log line.
wait_admin()
{
	local what=up

	[ "$2" = 1 ] && what=down
	logged_after "$4" "$1: $what: " || return 1
	[ "$ELAPSED" -le "$3" ] || return 1
	wait_until 2 admin_is "$1" "$2"
}

# route_is WANT: "EQUALIZE DEV,DEV.." of the balancer's 10.0.0.0/16 as
# mpbalctl shows it ("" when there is no multipath route) equals WANT.
ROUTE=""
route_is()
{
	ROUTE=$(mpbalctl -n "$NS_BAL" -j route show 2>/dev/null |
		jq -r '.[] | select(.dst == "10.0.0.0/16") |
			"\(.equalize) \([.nexthops[].dev] | join(","))"')
	[ "$ROUTE" = "$1" ]
}

# wait_route WANT TIMEOUT_S: the route becomes WANT.
wait_route()
{
	wait_until "$2" route_is "$1"
}

# repaired T0 T1 TEXT: the daemon logs TEXT (a repair, logged once the
# kernel acked it) after T0, within 1 s of T1, when the command that broke
# the route had returned (under TCG a command takes 100 to 500 ms; the
# break is at its end). ELAPSED = ms from T1 (0 if before), FROM0 from T0.
FROM0=""
repaired()
{
	logged_after "$1" "$3" || return 1
	FROM0=$ELAPSED
	ELAPSED=$((FROM0 - ($2 - $1)))
	[ "$ELAPSED" -ge 0 ] || ELAPSED=0
	[ "$ELAPSED" -le 1000 ]
}

# router_dead NS: it drops ICMP to itself and everything it would forward,
# its links staying up. router_alive NS undoes it.
router_dead()
{
	ip netns exec "$1" nft -f - <<-'EOF'
	table inet dead {
		chain input_drop {
			type filter hook input priority 0; policy accept;
			meta l4proto icmp drop
		}
		chain forward_drop {
			type filter hook forward priority 0; policy drop;
		}
	}
	EOF
}

router_alive()
{
	ip netns exec "$1" nft delete table inet dead
}

# flows TAG SPORT DSTS: 60 UDP flows (one per destination, 3 datagrams
# each, to port 7000 from SPORT) from srcA; PK = "d1 d2 d3", the module's
# packets per uplink meanwhile.
PK=""
flows()
{
	local out

	bal_snap F0
	out=$(ip netns exec "$NS_SRCA" flowgen udp -d "$3" -p 7000 -n 180 -s 64 -S "$2" 2>&1) ||
		log_info "$1: flowgen: $out"
	bal_snap F1
	PK=$(snap_d3 F0 F1 u packets)
}

# 60 destinations (dests_add) as a flowgen list, and 60 more on dst1 and dst2
# that no flow used before.
DESTS=""
setup()
{
	local r ns x

	mpbal_load strategy=route || die "insmod $MPBAL_KO failed: $MPBAL_LOAD_ERR"
	testbed_up || die "testbed"
	dests_add || die "dests_add"
	DESTS=$(printf '%s,' "${TB_EXTRA_DSTS[@]}")
	DESTS=${DESTS%,}
	# Each uplink's address answered through its own router (the testbed
	# sends all of 172.20.0.0/16 back through testa or testb).
	for r in 1 2 3; do
		ip -n "$NS_DST1" route add "172.20.$r.0/24" via "172.21.$r.1" dev "eth$((r - 1))" ||
			die "dst1 route"
		ip -n "$NS_DST2" route add "172.20.$r.0/24" via "172.22.$r.1" dev "eth$((r - 1))" ||
			die "dst2 route"
	done
	# The datagrams go no further than the routers.
	routers_drop_udp 7000 || die "routers_drop_udp"
	ns_pin "$NS_BAL" || log_info "no sleeper in the balancer netns (reads spawn)"
	at_exit daemon_stop
	x=$(ip netns exec "$NS_BAL" mpbalctl apply --check -f "$CFG" 2>&1) || die "$CFG: $x"
}

test_start()
{
	local rc=0 detail st_cap prom

	daemon_start
	wait_until 15 all_probed_up || rc=1
	detail="status: $(st -c '[.uplinks[] | {dev, h: .probe.health, r: .probe.rounds}]')"
	log_test $rc "start: three uplinks probed up within 15 s" "$detail"

	rc=0
	route_is "true up1,up2,up3" || rc=1
	st_cap=$(bal_sysctl conf/up1/capacity)
	[ "$st_cap" = 10000000 ] || rc=1
	[ "$(bal_sysctl strategy)" = session ] || rc=1
	grep -q "applied: sysctl net.mpbal.strategy route -> session" "$DLOG" || rc=1
	log_test $rc "start: the file applied (route, capacity, strategy), logged" \
		"route '$ROUTE', up1 capacity '$st_cap', log: $(head -c 600 "$DLOG")"

	rc=0
	prom=$(cat "$SD/mpbal.prom" 2>/dev/null)
	grep -qx 'mpbal_uplink_probe_up{dev="up3"} 1' <<<"$prom" || rc=1
	grep -qx 'mpbal_daemon_running 1' <<<"$prom" || rc=1
	grep -qx 'mpbal_uplink_tier{dev="up3"} 2' <<<"$prom" || rc=1
	[ "$(st '.uplinks[] | select(.dev == "up1") | .module.admin')" = up ] || rc=1
	[ "$(st '.uplinks[] | select(.dev == "up1") | .probe.probes_answered > 0')" = true ] || rc=1
	log_test $rc "start: status.json and mpbal.prom show the uplinks" "$(head -c 400 <<<"$prom")"
}

test_dead_upstream()
{
	local rc detail bound_down bound_up t0 t1

	bound_down=$((DOWN * INTERVAL_MS + TIMEOUT_MS + SLACK_MS))
	bound_up=$((UP * INTERVAL_MS + TIMEOUT_MS + SLACK_MS))
	[ -n "$DPID" ] || { daemon_start; wait_until 15 all_probed_up; }

	# Before: tier 1 shares the flows, tier 2 carries none.
	flows before 40001 "$DESTS"
	read -r -a P <<<"$PK"
	rc=0
	[ "${P[0]}" -gt 0 ] && [ "${P[1]}" -gt 0 ] && [ "${P[2]}" -eq 0 ] || rc=1
	log_test $rc "dead upstream: before, up1 and up2 carry, up3 (tier 2) not" "packets $PK"

	# testa stops passing anything; its link stays up.
	rc=0
	router_dead "$NS_TESTA" || rc=1
	wait_admin up1 1 "$bound_down" "$(now_ms)" || rc=1
	detail="down after $ELAPSED ms (bound $bound_down)"
	log_info "up1: $detail"
	grep -q "up1: down: $DOWN failed rounds in a row: 0 of 2 targets answered" "$DLOG" || rc=1
	admin_is up2 0 && admin_is up3 0 || rc=1
	log_test $rc "dead upstream: up1 down within down x interval + timeout, reason logged" \
		"$detail; log: $(grep 'up1:' "$DLOG" | tail -n 2)"

	# The flows stored on up1 (the same ones again) and new ones.
	rc=0
	flows stored 40001 "$DESTS"
	read -r -a P <<<"$PK"
	[ "${P[0]}" -eq 0 ] && [ "${P[1]}" -ge 170 ] && [ "${P[2]}" -eq 0 ] || rc=1
	detail="stored: $PK; "
	flows new 40002 "$DESTS"
	read -r -a P <<<"$PK"
	[ "${P[0]}" -eq 0 ] && [ "${P[1]}" -ge 170 ] && [ "${P[2]}" -eq 0 ] || rc=1
	log_test $rc "dead upstream: stored and new flows avoid up1, all on up2" "${detail}new: $PK"

	# testb too: all of tier 1 is down, tier 2 takes over.
	rc=0
	router_dead "$NS_TESTB" || rc=1
	wait_admin up2 1 "$bound_down" "$(now_ms)" || rc=1
	detail="up2 down after $ELAPSED ms; "
	log_info "$detail"
	flows tier2 40003 "$DESTS"
	read -r -a P <<<"$PK"
	[ "${P[0]}" -eq 0 ] && [ "${P[1]}" -eq 0 ] && [ "${P[2]}" -ge 170 ] || rc=1
	log_test $rc "dead upstream: tier 1 all down, up3 (tier 2) takes the flows" "${detail}packets $PK"

	# Recovery.
	rc=0
	router_alive "$NS_TESTA" || rc=1
	t0=$(now_ms)
	router_alive "$NS_TESTB" || rc=1
	t1=$(now_ms)
	wait_admin up1 0 "$bound_up" "$t0" || rc=1
	detail="up1 up after $ELAPSED ms; "
	wait_admin up2 0 "$bound_up" "$t1" || rc=1
	detail+="up2 after $ELAPSED ms (bound $bound_up); "
	log_info "$detail"
	grep -q "up1: up: $UP good rounds in a row: 2 of 2 targets answered" "$DLOG" || rc=1
	log_test $rc "dead upstream: up1 and up2 up again within up x interval + timeout" \
		"$detail$(grep -E 'up[12]: up' "$DLOG" | tail -n 2)"

	rc=0
	flows after 40004 "$DESTS"
	read -r -a P <<<"$PK"
	[ "${P[0]}" -gt 0 ] && [ "${P[1]}" -gt 0 ] && [ "${P[2]}" -eq 0 ] || rc=1
	[ "$(st '.uplinks[] | select(.dev == "up1") | .probe.transitions')" = 2 ] || rc=1
	grep -qx 'mpbal_uplink_probe_transitions_total{dev="up1"} 2' "$SD/mpbal.prom" || rc=1
	log_test $rc "dead upstream: after, tier 1 carries again, up3 nothing; 2 transitions" \
		"packets $PK, status: $(st -c '.uplinks[0].probe | {health, transitions, reason}')"
}

# up1_recreate: a new up1 (and testa's eth0), as testbed_up made them.
up1_recreate()
{
	ip link add name up1 address 02:00:00:00:03:01 netns "$NS_BAL" type veth \
		peer name eth0 address 02:00:00:00:03:02 netns "$NS_TESTA" &&
		ip -n "$NS_TESTA" -batch - <<-EOF &&
		link set eth0 up
		addr add $UP1_GW/24 dev eth0
		neigh replace $UP1_IP lladdr 02:00:00:00:03:01 dev eth0 nud permanent
		route add $SRC_NET via $UP1_IP dev eth0
		EOF
		ip -n "$NS_BAL" -batch - <<-EOF
		link set up1 up
		neigh replace $UP1_GW lladdr 02:00:00:00:03:02 dev up1 nud permanent
		EOF
}

# The nexthops of the file's route as the daemon logs them.
HOP1="nexthop via $UP1_GW dev up1 weight 1"
HOP2="nexthop via $UP2_GW dev up2 weight 1"
HOP3="nexthop via $UP3_GW dev up3 weight 1"
ALL3="$HOP1 $HOP2 $HOP3"

test_route_guard()
{
	local rc cap t0 t1

	[ -n "$DPID" ] || { daemon_start; wait_until 15 all_probed_up; }
	route_is "true up1,up2,up3" || log_info "before: route '$ROUTE'"

	# Each repair is timed from just before the command that undoes the
	# route to the daemon's log line of the repair (written once the kernel
	# acked it); then the route is checked.
	rc=0 t0=$(now_ms)
	ip -n "$NS_BAL" route replace "$DST_NET" nexthop via "$UP1_GW" dev up1 \
		nexthop via "$UP2_GW" dev up2 || rc=1
	t1=$(now_ms)
	repaired "$t0" "$t1" "route guard: route replace $DST_NET table main equalize $ALL3" || rc=1
	log_info "route guard: ip route replace without the flag: repaired $ELAPSED ms after it returned ($FROM0 ms after it started)"
	wait_route "true up1,up2,up3" 2 || rc=1
	log_test $rc "route guard: ip route replace without the flag undone within 1 s" \
		"after $ELAPSED ms: '$ROUTE'"

	rc=0 t0=$(now_ms)
	ip -n "$NS_BAL" route del "$DST_NET" || rc=1
	t1=$(now_ms)
	repaired "$t0" "$t1" "route guard: route add $DST_NET table main equalize $ALL3" || rc=1
	log_info "route guard: ip route del: repaired $ELAPSED ms after it returned ($FROM0 ms after it started)"
	wait_route "true up1,up2,up3" 2 || rc=1
	log_test $rc "route guard: ip route del undone within 1 s" "after $ELAPSED ms: '$ROUTE'"

	rc=0 t0=$(now_ms)
	ip -n "$NS_BAL" link del up1 || rc=1
	t1=$(now_ms)
	repaired "$t0" "$t1" "route guard: route add $DST_NET table main equalize $HOP2 $HOP3" || rc=1
	log_info "route guard: ip link del up1: route over up2, up3 $ELAPSED ms after it returned ($FROM0 ms after it started)"
	wait_route "true up2,up3" 2 || rc=1
	log_test $rc "route guard: ip link del up1: route over up2, up3 within 1 s" \
		"after $ELAPSED ms: '$ROUTE'; log: $(grep -E 'up1|guard' "$DLOG" | tail -n 3)"

	rc=0
	up1_recreate || rc=1
	t0=$(now_ms)
	ip -n "$NS_BAL" addr add "$UP1_IP/24" dev up1 || rc=1
	t1=$(now_ms)
	repaired "$t0" "$t1" "route guard: route replace $DST_NET table main equalize $ALL3" || rc=1
	log_info "route guard: up1 back in the route $ELAPSED ms after its address ($FROM0 ms after the command started)"
	wait_route "true up1,up2,up3" 2 || rc=1
	cap=$(bal_sysctl conf/up1/capacity)
	[ "$cap" = 10000000 ] || rc=1
	log_test $rc "route guard: up1 back in the route within 1 s of its address, capacity set" \
		"after $ELAPSED ms: '$ROUTE', capacity '$cap'"

	rc=0
	wait_until 10 eval '[ "$(health up1)" = up ] && admin_is up1 0' || rc=1
	flows guard 40005 "$DESTS"
	read -r -a P <<<"$PK"
	[ "${P[0]}" -gt 0 ] && [ "${P[1]}" -gt 0 ] && [ "${P[2]}" -eq 0 ] || rc=1
	log_test $rc "route guard: the new up1 is probed up and carries flows" "packets $PK"
}

test_bad_file()
{
	local rc=0 bad=$MPBAL_TMP/bad.toml out code before after

	# Line 3, column 12: a value out of range.
	printf 'strategy = "packet"\n[sysctl]\nbw_ewma_log = 99\n' >"$bad"
	before=$(bal_sysctl strategy)
	out=$(ip netns exec "$NS_BAL" mpbalctl daemon -f "$bad" --no-state 2>&1)
	code=$?
	after=$(bal_sysctl strategy)
	[ "$code" = 2 ] || rc=1
	grep -q "^mpbalctl: $bad:3:15: net.mpbal.bw_ewma_log = 99 is out of range" <<<"$out" || rc=1
	[ "$before" = "$after" ] && [ "$after" != packet ] || rc=1
	log_test $rc "bad file: exit 2, FILE:LINE:COL, nothing changed" \
		"exit $code: $out; strategy $before -> $after"
}

test_sigterm()
{
	local rc=0 t0 code detail

	[ -n "$DPID" ] || { daemon_start; wait_until 15 all_probed_up; }
	# up1's upstream dies, then the daemon is stopped: up1 stays down.
	router_dead "$NS_TESTA"
	wait_admin up1 1 $((DOWN * INTERVAL_MS + TIMEOUT_MS + SLACK_MS)) "$(now_ms)" || rc=1
	t0=$(now_ms)
	kill -TERM "$DPID"
	wait_pid_exit 2 "$DPID" || rc=1
	wait "$DPID"
	code=$?
	DPID=""
	detail="exit $code after $(($(now_ms) - t0)) ms; "
	[ "$code" = 0 ] || rc=1
	grep -q "stopping on SIGTERM: left up1 down, up2 up, up3 up; the file's routes in place" \
		"$DLOG" || rc=1
	admin_is up1 1 && admin_is up2 0 || rc=1
	route_is "true up1,up2,up3" || rc=1
	[ "$(st .daemon.running)" = false ] || rc=1
	grep -qx 'mpbal_daemon_running 0' "$SD/mpbal.prom" || rc=1
	log_test $rc "SIGTERM: exit 0 within 2 s, what it left logged and in place" \
		"$detail$(tail -n 2 "$DLOG"); route '$ROUTE'"
	router_alive "$NS_TESTA"
}

setup
tests_run
mpbal_finish
