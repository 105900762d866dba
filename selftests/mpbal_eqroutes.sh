#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The equalize route on the thesis testbed: mpbalctl route add/show/del,
# the stats and uplinks tables, the hash policy mpbal manages, counting of
# forwarded packets on equalize and on stock multipath routes, and
# manage_hash_policy=0. Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_eqroutes.sh
set -u

# In this order the route added by test_route_add serves the tests up to
# test_route_del, which removes it; run alone, a test adds it (or, for
# test_route_add and test_unmanaged, removes it) first.
ALL_TESTS="
	test_route_add
	test_stats_after_add
	test_forward_session
	test_forward_packet
	test_stock_multipath
	test_route_del
	test_unmanaged
"

# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

mpbal_init ip sysctl mpbalctl jq flowgen

# A prefix for the stock (non-equalize) multipath route: dst1 and dst2 get
# one address each on lo, the routers route them like 10.0.1.0/24 and
# 10.0.2.0/24.
STOCK_NET=10.9.0.0/24
STOCK_DST1=10.9.0.1
STOCK_DST2=10.9.0.2

testbed_nexthops 1 2 3
EQ_ROUTE=(equalize "$DST_NET" "${NEXTHOPS[@]}")

bal_hash_policy()
{
	ns_sysctl_get "$NS_BAL" net.ipv4.fib_multipath_hash_policy
}

# need_eq_route: the equalize route of test_route_add, added if missing.
need_eq_route()
{
	[ "$(mpbal_stat "$NS_BAL" equalize_routes)" = 1 ] && return 0
	mpbalctl -n "$NS_BAL" route add "${EQ_ROUTE[@]}" ||
		log_test 1 "setup: mpbalctl route add ${EQ_ROUTE[*]}"
}

# need_no_eq_route: no route to $DST_NET (it stays in the FIB across a
# reload of the module).
need_no_eq_route()
{
	ip -n "$NS_BAL" route show "$DST_NET" | grep -q . || return 0
	mpbalctl -n "$NS_BAL" route del "$DST_NET" ||
		log_test 1 "setup: mpbalctl route del $DST_NET"
}

# send DESTS PORTS COUNT: flowgen from srcA; logs its summary line.
send()
{
	local out rc

	out=$(ip netns exec "$NS_SRCA" flowgen udp -d "$1" -p "$2" -n "$3" -s 64 2>&1)
	rc=$?
	log_info "flowgen: $out"
	return $rc
}

setup()
{
	mpbal_load
	log_test $? "insmod with default parameters" "$MPBAL_LOAD_ERR"
	testbed_up
	log_test $? "testbed: up"
	ns_pin "$NS_BAL" || log_info "no sleeper in the balancer netns (reads spawn)"
}

test_route_add()
{
	local out rc detail v

	need_no_eq_route
	v=$(bal_hash_policy)
	[ "$v" = 0 ]
	log_test $? "balancer: fib_multipath_hash_policy is 0 before any equalize route" "got '$v'"
	v=$(mpbal_stat "$NS_BAL" hooks)
	[ "$v" = off ]
	log_test $? "balancer: no netfilter hooks registered before any equalize route" "hooks '$v'"

	out=$(mpbalctl -n "$NS_BAL" route add "${EQ_ROUTE[@]}" 2>&1)
	log_test $? "mpbalctl route add equalize $DST_NET over up1..3 weights 1 2 3" "$out"

	out=$(mpbalctl -n "$NS_BAL" route show)
	rc=0
	grep -qE "^$DST_NET( table main)? equalize" <<<"$out" || rc=1
	grep -qE "^\s+nexthop via $UP1_GW dev $UP1 weight 1\s*$" <<<"$out" || rc=1
	grep -qE "^\s+nexthop via $UP2_GW dev $UP2 weight 2\s*$" <<<"$out" || rc=1
	grep -qE "^\s+nexthop via $UP3_GW dev $UP3 weight 3\s*$" <<<"$out" || rc=1
	log_test $rc "mpbalctl route show: $DST_NET marked equalize, 3 nexthops, weights 1 2 3" "$out"

	out=$(mpbalctl -n "$NS_BAL" -j route show |
		jq -e -r --arg d "$DST_NET" '.[] | select(.dst == $d) |
			"\(.equalize) " + ([.nexthops[] | "\(.gateway)/\(.dev)/\(.weight)"] | join(" "))')
	[ "$out" = "true $UP1_GW/$UP1/1 $UP2_GW/$UP2/2 $UP3_GW/$UP3/3" ]
	log_test $? "mpbalctl -j route show: \"equalize\": true, nexthops and weights" "got '$out'"
}

test_stats_after_add()
{
	local v rc detail s others

	need_eq_route
	v=$(mpbal_stat "$NS_BAL" equalize_routes)
	[ "$v" = 1 ]
	log_test $? "stats: equalize_routes 1" "got '$v'"
	# mpbalctl returns once the module steers the route.
	v=$(mpbal_stat "$NS_BAL" hooks)
	[ "$v" = on ]
	log_test $? "stats: hooks on as soon as mpbalctl route add returns" "got '$v'"

	rc=0
	wait_stat "$NS_BAL" 15 hash_policy managed || rc=1
	v=$(bal_hash_policy)
	[ "$v" = 1 ] || rc=1
	log_test $rc "stats: hash_policy managed and fib_multipath_hash_policy 1 (bounded wait)" \
		"hash_policy $(mpbal_stat "$NS_BAL" hash_policy), sysctl $v"

	# Conntrack: held only under the session strategy (the default).
	wait_stat "$NS_BAL" 15 conntrack held
	log_test $? "stats: conntrack held under strategy session" \
		"strategy $(mpbal_stat "$NS_BAL" strategy), conntrack $(mpbal_stat "$NS_BAL" conntrack)"
	rc=0
	detail=""
	mpbal_strategies || { rc=1; detail+="no available_strategies; "; }
	others=("${MPBAL_STRATEGIES[@]}")
	for s in "${!others[@]}"; do
		[ "${others[s]}" = session ] && unset 'others[s]'
	done
	[ ${#others[@]} -gt 0 ] || rc=1
	for s in "${others[@]}"; do
		mpbalctl -n "$NS_BAL" strategy set "$s" || rc=1
		wait_stat "$NS_BAL" 15 conntrack off || { rc=1; detail+="$s: $(mpbal_stat "$NS_BAL" conntrack); "; }
	done
	log_test $rc "stats: conntrack off under the other strategies: ${others[*]}" "$detail"
	mpbalctl -n "$NS_BAL" strategy set session
	wait_stat "$NS_BAL" 15 conntrack held
	log_test $? "stats: conntrack held again after switching back to session" "conntrack $(mpbal_stat "$NS_BAL" conntrack)"

	bal_snap S0
	v=$(for s in "${!S0[@]}"; do [[ $s == u:*:packets ]] && s=${s#u:} && echo "${s%:packets}"; done | sort | tr '\n' ' ')
	[ "$v" = "$UP1 $UP2 $UP3 " ]
	log_test $? "uplinks: the table lists up1 up2 up3" "got '$v'"
}

# fwd_traffic STRATEGY: N packets to the four destinations over the
# equalize route are all counted and steered.
fwd_traffic()
{
	local s=$1 n=600 rc ul tx dev detail

	need_eq_route
	mpbalctl -n "$NS_BAL" strategy set "$s"
	bal_snap S0
	# 4 addresses x 150 ports: 600 distinct flows.
	send "$DST_ALL" 10000-10149 $n
	log_test $? "forward ($s): flowgen sent $n datagrams srcA -> 4 destinations"
	bal_snap S1

	[ "$(snap_d S0 S1 s:packets_fwd)" -eq $n ]
	log_test $? "forward ($s): packets_fwd grew by exactly $n" "grew by $(snap_d S0 S1 s:packets_fwd)"
	[ "$(snap_d S0 S1 s:steered)" -eq $n ]
	log_test $? "forward ($s): steered grew by exactly $n" "grew by $(snap_d S0 S1 s:steered)"

	ul=$(snap_d3 S0 S1 u packets)
	# shellcheck disable=SC2086 # three numbers
	[ "$(sum $ul)" -eq $n ]
	log_test $? "forward ($s): uplinks table packets of up1..3 sum to $n" "up1/up2/up3 $ul"

	tx=$(snap_d3 S0 S1 tx)
	# shellcheck disable=SC2086 # three numbers
	[ "$(sum $tx)" -eq $n ]
	log_test $? "forward ($s): link tx packets of up1..3 grew by $n" "up1/up2/up3 $tx"

	rc=0
	detail=""
	for dev in "${TB_UPLINKS[@]}"; do
		[ "$(snap_d S0 S1 "u:$dev:packets")" -eq "$(snap_d S0 S1 "tx:$dev")" ] ||
			{ rc=1; detail+="$dev: table $(snap_d S0 S1 "u:$dev:packets") link $(snap_d S0 S1 "tx:$dev"); "; }
	done
	log_test $rc "forward ($s): per uplink, table packets equal link tx packets" "$detail"
}

test_forward_session()
{
	fwd_traffic session
}

test_forward_packet()
{
	fwd_traffic packet
}

test_stock_multipath()
{
	local n=300 r ns out rc=0 tx

	# The hooks that count packets_multipath run while an equalize route is.
	need_eq_route
	ip -n "$NS_DST1" addr add "$STOCK_DST1/32" dev lo &&
		ip -n "$NS_DST2" addr add "$STOCK_DST2/32" dev lo || rc=1
	for r in 1 2 3; do
		ns=${TB_ROUTERS[r - 1]}
		ip -n "$ns" -batch - <<-EOF || rc=1
			route add $STOCK_DST1/32 via 172.21.$r.2 dev eth1
			route add $STOCK_DST2/32 via 172.22.$r.2 dev eth2
		EOF
	done
	ip -n "$NS_BAL" route add "$STOCK_NET" \
		nexthop via "$UP1_GW" dev "$UP1" nexthop via "$UP2_GW" dev "$UP2" \
		nexthop via "$UP3_GW" dev "$UP3" || rc=1
	log_test $rc "stock: ip route add $STOCK_NET multipath (no equalize) on the balancer"

	bal_snap S0
	send "$STOCK_DST1,$STOCK_DST2" 20000-20149 $n
	log_test $? "stock: flowgen sent $n datagrams srcA -> $STOCK_NET"
	bal_snap S1

	[ "$(snap_d S0 S1 s:packets_multipath)" -eq $n ]
	log_test $? "stock: packets_multipath grew by exactly $n" "grew by $(snap_d S0 S1 s:packets_multipath)"
	[ "$(snap_d S0 S1 s:packets_fwd)" -eq 0 ]
	log_test $? "stock: packets_fwd unchanged" "grew by $(snap_d S0 S1 s:packets_fwd)"
	[ "$(snap_d S0 S1 s:steered)" -eq 0 ]
	log_test $? "stock: steered unchanged" "grew by $(snap_d S0 S1 s:steered)"
	tx=$(snap_d3 S0 S1 tx)
	# shellcheck disable=SC2086 # three numbers
	[ "$(sum $tx)" -eq $n ]
	log_test $? "stock: the $n datagrams left by up1..3" "up1/up2/up3 $tx"

	out=$(mpbalctl -n "$NS_BAL" route show)
	rc=0
	grep -qE "^$STOCK_NET " <<<"$out" || rc=1
	grep -E "^$STOCK_NET " <<<"$out" | grep -q equalize && rc=1
	r=$(mpbalctl -n "$NS_BAL" -j route show | jq -r --arg d "$STOCK_NET" \
		'.[] | select(.dst == $d) | "\(.equalize) \(.nexthops | length)"')
	[ "$r" = "false 3" ] || rc=1
	log_test $rc "mpbalctl route show: plain ip route $STOCK_NET listed without equalize" "$out / -j: $r"
}

test_route_del()
{
	local out v rc

	need_eq_route
	out=$(mpbalctl -n "$NS_BAL" route del "$DST_NET" 2>&1)
	log_test $? "mpbalctl route del $DST_NET" "$out"

	out=$(mpbalctl -n "$NS_BAL" route show)
	grep -q "^$DST_NET" <<<"$out"
	[ $? -ne 0 ]
	log_test $? "mpbalctl route show: $DST_NET gone" "$out"

	v=$(mpbal_stat "$NS_BAL" equalize_routes)
	[ "$v" = 0 ]
	log_test $? "after del: equalize_routes 0" "got '$v'"

	wait_sysctl "$NS_BAL" 15 net.ipv4.fib_multipath_hash_policy 0
	log_test $? "after del: fib_multipath_hash_policy restored to 0 (bounded wait)" "now $(bal_hash_policy)"

	rc=0
	[ "$(mpbal_stat "$NS_BAL" hash_policy)" = idle ] || rc=1
	log_test $rc "after del: hash_policy idle" "got '$(mpbal_stat "$NS_BAL" hash_policy)'"
	wait_stat "$NS_BAL" 15 conntrack off
	log_test $? "after del: conntrack off (no equalize route)" "got '$(mpbal_stat "$NS_BAL" conntrack)'"
	wait_stat "$NS_BAL" 15 hooks off
	log_test $? "after del: netfilter hooks unregistered" "got '$(mpbal_stat "$NS_BAL" hooks)'"
}

test_unmanaged()
{
	local n=300 out v rc log tx

	need_no_eq_route
	mpbal_loaded || mpbal_load || log_test 1 "setup: insmod" "$MPBAL_LOAD_ERR"
	mpbal_unload
	log_test $? "unmanaged: rmmod"
	kmsg_mark
	mpbal_load manage_hash_policy=0
	log_test $? "unmanaged: insmod manage_hash_policy=0" "$MPBAL_LOAD_ERR"
	# The sleeper's netns outlives the reload; its /proc/PID/net follows.

	out=$(mpbalctl -n "$NS_BAL" route add "${EQ_ROUTE[@]}" 2>&1)
	log_test $? "unmanaged: mpbalctl route add equalize $DST_NET" "$out"

	rc=0
	# shellcheck disable=SC2317 # called by wait_until
	_warned() { kmsg_since | grep -q 'mpbal: .*fib_multipath_hash_policy'; }
	wait_until 15 _warned || rc=1
	log=$(kmsg_since | grep 'mpbal: .*fib_multipath_hash_policy')
	log_test $rc "unmanaged: dmesg warns naming fib_multipath_hash_policy" "$log"

	rc=0
	v=$(mpbal_stat "$NS_BAL" equalize_routes)
	[ "$v" = 1 ] || rc=1
	[ "$(mpbal_stat "$NS_BAL" hash_policy)" = mismatch ] || rc=1
	log_test $rc "unmanaged: stats equalize_routes 1, hash_policy mismatch" \
		"equalize_routes $v hash_policy $(mpbal_stat "$NS_BAL" hash_policy)"
	v=$(bal_hash_policy)
	[ "$v" = 0 ]
	log_test $? "unmanaged: fib_multipath_hash_policy left at 0" "got '$v'"

	bal_snap S0
	send "$DST_ALL" 10000-10074 $n
	log_test $? "unmanaged: flowgen sent $n datagrams srcA -> 4 destinations"
	bal_snap S1
	[ "$(snap_d S0 S1 s:packets_fwd)" -eq $n ]
	log_test $? "unmanaged: packets_fwd grew by exactly $n" "grew by $(snap_d S0 S1 s:packets_fwd)"
	[ "$(snap_d S0 S1 s:fallback_hash_policy)" -eq $n ]
	log_test $? "unmanaged: fallback_hash_policy grew by exactly $n" "grew by $(snap_d S0 S1 s:fallback_hash_policy)"
	[ "$(snap_d S0 S1 s:steered)" -eq 0 ]
	log_test $? "unmanaged: steered unchanged" "grew by $(snap_d S0 S1 s:steered)"
	tx=$(snap_d3 S0 S1 tx)
	# shellcheck disable=SC2086 # three numbers
	[ "$(sum $tx)" -eq $n ]
	log_test $? "unmanaged: the $n datagrams still left by up1..3" "up1/up2/up3 $tx"

	mpbalctl -n "$NS_BAL" route del "$DST_NET"
	v=$(bal_hash_policy)
	[ "$v" = 0 ]
	log_test $? "unmanaged: fib_multipath_hash_policy still 0 after del" "got '$v'"
}

setup
tests_run
mpbal_finish
tests_summary
