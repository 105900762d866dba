#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Bounded state and clean accounting (Documentation/overview.rst,
# "Namespaces without equalize routes", "Tracking equalize routes"):
#  - 70 equalize routes (64 tracked), one replaced 10 times, all deleted: the
#    netns goes idle (count 0, hooks off, conntrack off, hash policy idle);
#  - plain route events do not touch the record of equalize routes;
#  - 36 uplinks: 32 get ids, 4 are untracked and never chosen;
#  - 500 netns held open grow Percpu by at most 64 KiB more with the module
#    than without it (the test prints both);
#  - allocations of mpbal failing on purpose (failslab on its text) neither
#    fail a netns nor break one: it goes "degraded" and recovers;
#  - warnings an unprivileged user namespace can cause at will are
#    rate-limited (net_ratelimit: 10 lines per 5 s).
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       --mem 2560 -- /selftests/mpbal_state.sh
#
# 1200 netns at once need more than the default guest memory:
# vm-mem: 2560
set -u

# Independent; each makes its own netns.
ALL_TESTS="
	test_routes_go_idle
	test_plain_route_events
	test_uplinks_beyond_32
	test_percpu_500_netns
	test_alloc_failure
	test_log_ratelimit
"

# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/lib.sh"

mpbal_init ip mpbalctl flowgen unshare

# mk_ns NAME: a netns with three dummies d0..d2 (10.50.N.1/24, gateway
# 10.50.N.2 with a permanent neighbour), the name in NS.
mk_ns()
{
	ns_create "$1" || return 1
	NS=$NS_PREFIX$1
	ip -n "$NS" -batch - <<-EOF
	link add d0 type dummy
	link add d1 type dummy
	link add d2 type dummy
	link set d0 up
	link set d1 up
	link set d2 up
	addr add 10.50.0.1/24 dev d0
	addr add 10.50.1.1/24 dev d1
	addr add 10.50.2.1/24 dev d2
	neigh replace 10.50.0.2 lladdr 02:00:00:00:50:00 dev d0 nud permanent
	neigh replace 10.50.1.2 lladdr 02:00:00:00:50:01 dev d1 nud permanent
	neigh replace 10.50.2.2 lladdr 02:00:00:00:50:02 dev d2 nud permanent
	EOF
}

NH3=(nexthop via 10.50.0.2 dev d0 nexthop via 10.50.1.2 dev d1 nexthop via 10.50.2.2 dev d2)

test_routes_go_idle()
{
	local i rc=0 detail="" v

	mk_ns idle || { log_test 1 "idle: netns"; return; }
	ns_sysctl "$NS" net.ipv4.fib_multipath_hash_policy=0
	for i in $(seq 1 70); do
		mpbalctl -n "$NS" route add equalize "10.100.$i.0/24" "${NH3[@]}" >/dev/null 2>&1 ||
			{ rc=1; detail+="add $i; "; }
	done
	mpbal_stats "$NS"
	log_info "idle: 70 added: equalize_routes ${ST[equalize_routes]} untracked ${ST[equalize_routes_untracked]} hooks ${ST[hooks]} fib_resyncs ${ST[fib_resyncs]}"
	[ "$rc" -eq 0 ] && [ "${ST[equalize_routes]}" = 70 ] && [ "${ST[equalize_routes_untracked]}" = 6 ]
	log_test $? "idle: 70 equalize routes counted, 6 of them untracked" "$detail"
	for i in $(seq 1 10); do
		mpbalctl -n "$NS" route replace equalize 10.100.70.0/24 "${NH3[@]}" >/dev/null 2>&1 || rc=1
	done
	# The replay that makes the record exact again is at most once a second.
	wait_until 5 eval '[ "$(mpbal_stat "$NS" equalize_routes)" = 70 ]'
	log_test $? "idle: still 70 after replacing one 10 times ($(mpbal_stat "$NS" equalize_routes))"
	for i in $(seq 1 70); do
		echo "route del 10.100.$i.0/24"
	done | ip -n "$NS" -batch - || rc=1
	wait_until 10 eval '[ "$(mpbal_stat "$NS" hooks)" = off ] && [ "$(mpbal_stat "$NS" equalize_routes)" = 0 ]'
	mpbal_stats "$NS"
	v="equalize_routes ${ST[equalize_routes]} untracked ${ST[equalize_routes_untracked]} hooks ${ST[hooks]} conntrack ${ST[conntrack]} hash_policy ${ST[hash_policy]} state ${ST[state]}"
	log_info "idle: all deleted: $v; net.ipv4.fib_multipath_hash_policy $(ns_sysctl_get "$NS" net.ipv4.fib_multipath_hash_policy)"
	[ "${ST[equalize_routes]}" = 0 ] && [ "${ST[equalize_routes_untracked]}" = 0 ] &&
		[ "${ST[hooks]}" = off ] && [ "${ST[conntrack]}" = off ] &&
		[ "${ST[hash_policy]}" = idle ] && [ "${ST[state]}" = idle ] &&
		[ "$(ns_sysctl_get "$NS" net.ipv4.fib_multipath_hash_policy)" = 0 ]
	log_test $? "idle: all deleted: the netns is idle again ($v, policy restored to 0)"
	ns_delete "$NS"
}

test_plain_route_events()
{
	local before after eq0 eq1 i

	mk_ns plain || { log_test 1 "plain: netns"; return; }
	mpbalctl -n "$NS" route add equalize 10.100.0.0/24 "${NH3[@]}" >/dev/null ||
		{ log_test 1 "plain: equalize route"; return; }
	before=$(mpbal_stat "$NS" fib_events) eq0=$(mpbal_stat "$NS" fib_events_equalize)
	for i in $(seq 0 1999); do
		echo "route add 10.60.$((i / 256)).$((i % 256))/32 via 10.50.0.2"
	done | ip -n "$NS" -batch -
	after=$(mpbal_stat "$NS" fib_events) eq1=$(mpbal_stat "$NS" fib_events_equalize)
	log_info "plain: 2000 plain routes: fib_events +$((after - before)), fib_events_equalize +$((eq1 - eq0))"
	[ $((after - before)) -ge 2000 ] && [ "$eq1" -eq "$eq0" ]
	log_test $? "plain: 2000 plain route events left the equalize record alone (+$((eq1 - eq0)))"
	ns_delete "$NS"
}

test_uplinks_beyond_32()
{
	local i nh=() r out sent per total fb0 fb1

	mk_ns many || { log_test 1 "uplinks: netns"; return; }
	ip -n "$NS" link add d9 type dummy && ip -n "$NS" link set d9 up &&
		ip -n "$NS" addr add 172.30.0.1/24 dev d9 ||
		{ log_test 1 "uplinks: d9"; return; }
	for i in $(seq 2 37); do
		echo "neigh replace 172.30.0.$i lladdr 02:00:00:00:30:$(printf %02x "$i") dev d9 nud permanent"
	done | ip -n "$NS" -batch -
	# Three routes of 12 nexthops: 36 uplinks, in that order.
	for r in 0 1 2; do
		nh=()
		for i in $(seq $((2 + 12 * r)) $((13 + 12 * r))); do
			nh+=(nexthop via "172.30.0.$i" dev d9)
		done
		mpbalctl -n "$NS" route add equalize "10.70.$r.0/24" "${nh[@]}" >/dev/null ||
			{ log_test 1 "uplinks: route $r"; return; }
	done
	# A fourth over only the last four, which got no id.
	mpbalctl -n "$NS" route add equalize 10.70.3.0/24 nexthop via 172.30.0.34 dev d9 \
		nexthop via 172.30.0.35 dev d9 nexthop via 172.30.0.36 dev d9 \
		nexthop via 172.30.0.37 dev d9 >/dev/null || { log_test 1 "uplinks: route 3"; return; }
	mpbalctl -n "$NS" strategy set packet
	wait_stat "$NS" 5 hooks on
	mpbal_stats "$NS"
	ns_read "$NS" /proc/net/mpbal/uplinks
	log_info "uplinks: ${#NS_LINES[@]} lines in the uplinks table, uplinks_untracked ${ST[uplinks_untracked]}"
	[ "${ST[uplinks_untracked]}" = 4 ] && [ $((${#NS_LINES[@]} - 1)) -eq 32 ]
	log_test $? "uplinks: 36 uplinks: 32 have ids, 4 are untracked"

	# Traffic to route 2 (8 tracked, 4 untracked nexthops): only tracked.
	out=$(ip netns exec "$NS" flowgen udp -d 10.70.2.9 -p 9000-9099 -n 400 -s 32)
	sent=$(flowgen_sent "$out")
	ns_read "$NS" /proc/net/mpbal/uplinks
	total=0
	for i in "${NS_LINES[@]:1}"; do
		read -r _ _ _ per _ <<<"$i"
		total=$((total + per))
	done
	[ "$sent" -eq 400 ] && [ "$total" -eq 400 ]
	log_test $? "uplinks: all $sent datagrams of a mixed route went to uplinks with ids ($total counted)"
	# Route 3 has no usable uplink: stock ECMP, counted.
	fb0=$(mpbal_stat "$NS" fallback_no_usable)
	ip netns exec "$NS" flowgen udp -d 10.70.3.9 -p 9100-9149 -n 100 -s 32 >/dev/null
	fb1=$(mpbal_stat "$NS" fallback_no_usable)
	[ $((fb1 - fb0)) -eq 100 ]
	log_test $? "uplinks: a route over untracked uplinks only is left to stock ECMP (fallback_no_usable +$((fb1 - fb0)) of 100)"
	ns_delete "$NS"
}

percpu_kb()
{
	awk '$1 == "Percpu:" { print $2 }' /proc/meminfo
}

# grow_netns NAME N: add N netns NAME-1..N and keep them; prints how much
# Percpu grew (kB).
grow_netns()
{
	local before after i

	before=$(percpu_kb)
	for i in $(seq 1 "$2"); do echo "netns add ${NS_PREFIX}$1-$i"; done | ip -batch - 2>/dev/null
	after=$(percpu_kb)
	echo $((after - before))
}

del_netns()
{
	local i

	for i in $(seq 1 "$2"); do echo "netns del ${NS_PREFIX}$1-$i"; done | ip -force -batch - 2>/dev/null
}

# Nothing is freed between the rounds: freed percpu memory is given back
# (depopulated) late and would be reused by whichever round came next. A
# first round takes up what boot left free.
test_percpu_500_netns()
{
	local with without

	mpbal_unload || { log_test 1 "percpu: rmmod"; return; }
	grow_netns warm 200 >/dev/null
	without=$(grow_netns nomod 500)
	if mpbal_load; then
		with=$(grow_netns mod 500)
		del_netns mod 500
	fi
	del_netns nomod 500
	del_netns warm 200
	[ -n "${with:-}" ] || { log_test 1 "percpu: insmod" "$MPBAL_LOAD_ERR"; return; }
	log_info "percpu: 500 netns grow Percpu by $without kB without mpbal, $with kB with it"
	[ $((with - without)) -le 64 ]
	log_test $? "percpu: 500 netns: $with kB with mpbal, $without kB without (at most 64 kB more)"
}

FAILSLAB=/sys/kernel/debug/failslab

# failslab_mpbal on|off: fail every slab allocation whose stack passes
# through mpbal.ko (its text and data in /proc/modules).
failslab_mpbal()
{
	local base size

	if [ "$1" = off ]; then
		echo 0 >"$FAILSLAB/probability"
		return 0
	fi
	# The base is hex above 2^63: written as hex (the files take base 0).
	read -r _ size _ _ _ base _ < <(grep '^mpbal ' /proc/modules)
	[ "$((base))" != 0 ] || return 1
	echo N >"$FAILSLAB/ignore-gfp-wait" &&
		echo "$base" >"$FAILSLAB/require-start" &&
		printf '0x%x\n' "$((base + size))" >"$FAILSLAB/require-end" &&
		echo 32 >"$FAILSLAB/stacktrace-depth" &&
		echo -1 >"$FAILSLAB/times" &&
		echo 1 >"$FAILSLAB/interval" &&
		echo 0 >"$FAILSLAB/verbose" &&
		echo 100 >"$FAILSLAB/probability"
}

test_alloc_failure()
{
	local log rc

	[ -d "$FAILSLAB" ] || { log_test 1 "alloc: failslab in debugfs (CONFIG_FAILSLAB)"; return; }
	mpbal_loaded || mpbal_load
	kmsg_mark
	failslab_mpbal on || { log_test 1 "alloc: failslab set up"; return; }
	ip netns add "${NS_PREFIX}fail1"
	rc=$?
	failslab_mpbal off
	ns_register "${NS_PREFIX}fail1"
	log=$(kmsg_since)
	[ "$rc" -eq 0 ] && ip -n "${NS_PREFIX}fail1" link show lo >/dev/null
	log_test $? "alloc: a netns is created although mpbal's allocations fail"
	grep -q "mpbal: netns .*: not balanced" <<<"$log"
	log_test $? "alloc: a log line says it is not balanced" "$(grep mpbal <<<"$log" | head -n 3)"

	# The packet path's state cannot be allocated: degraded, then recovers.
	mk_ns fail2 || { log_test 1 "alloc: netns fail2"; return; }
	failslab_mpbal on
	mpbalctl -n "$NS" route add equalize 10.100.0.0/24 "${NH3[@]}" >/dev/null 2>&1
	sleep 1
	mpbal_stats "$NS"
	log_info "alloc: with failing allocations: state ${ST[state]} hooks ${ST[hooks]}"
	[ "${ST[state]}" = degraded ] && [ "${ST[hooks]}" = off ]
	log_test $? "alloc: an equalize route without memory: state degraded, hooks off (stock ECMP)"
	failslab_mpbal off
	wait_until 10 eval '[ "$(mpbal_stat "$NS" state)" = active ] && [ "$(mpbal_stat "$NS" hooks)" = on ]'
	log_test $? "alloc: memory back: state $(mpbal_stat "$NS" state), hooks $(mpbal_stat "$NS" hooks)"
	ns_delete "$NS" "${NS_PREFIX}fail1"
}

# One warning per event: an equalize route mpbal cannot steer (17 nexthops)
# becomes the prefix's first route again each time a plain one in front of
# it goes (FIB_EVENT_ENTRY_REPLACE).
test_log_ratelimit()
{
	local n log t0 t1 ms allowed supp

	mpbal_loaded || mpbal_load
	kmsg_mark
	t0=$(now_ms)
	# A user namespace owns this netns: its root may change routes at will,
	# without any capability over the init namespace.
	unshare -U -r -n bash -c '
		ip link add d0 type dummy && ip link set d0 up &&
			ip addr add 10.50.0.1/24 dev d0 || exit 1
		nh=$(for i in $(seq 17); do printf " nexthop dev d0"; done)
		mpbalctl route add equalize 10.100.0.0/24 $nh metric 10 >/dev/null || exit 1
		for i in $(seq 200); do
			echo "route add 10.100.0.0/24 dev d0 metric 5"
			echo "route del 10.100.0.0/24 dev d0 metric 5"
		done | ip -batch -'
	log_test $? "ratelimit: an unsteerable equalize route reported 200 times in an unprivileged user namespace"
	t1=$(now_ms)
	log=$(kmsg_since)
	n=$(grep -c "mpbal:" <<<"$log")
	supp=$(grep -c "net_ratelimit: [0-9]* callbacks suppressed" <<<"$log")
	# net_ratelimit(): 10 lines per 5 s (net.core.message_burst, _cost).
	ms=$((t1 - t0))
	allowed=$((10 * (ms / 5000 + 2)))
	log_info "ratelimit: $n mpbal lines and $supp suppression notices in $ms ms"
	# At least a burst: the warnings were asked for.
	[ "$allowed" -lt 200 ] && [ "$n" -ge 10 ] && [ "$n" -le "$allowed" ]
	log_test $? "ratelimit: $n mpbal log lines for 200 warnings in $ms ms (at most $allowed)" \
		"$(grep mpbal <<<"$log" | tail -n 3)"
}

setup()
{
	mpbal_load
	log_test $? "insmod with default parameters" "$MPBAL_LOAD_ERR"
}

setup
tests_run
mpbal_finish
tests_summary
