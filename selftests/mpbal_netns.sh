#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Network namespace and module lifecycle under load: many netns with
# equalize routes created and deleted, a netns deleted while traffic flows
# through its equalize route, rmmod while traffic flows through the testbed,
# rmmod with many netns alive, and the hash policy restored on unload.
# Kernel trouble (leaked refs, "unregister_netdevice: waiting", lockdep,
# kmemleak) fails the run in the harness. Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_netns.sh
set -u

# Each test needs only the module loaded (setup); test_rmmod_many_netns,
# which unloads it, loads it again if a test before it left it unloaded.
ALL_TESTS="
	test_many_netns
	test_delete_under_traffic
	test_rmmod_under_traffic
	test_rmmod_many_netns
"

# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

mpbal_init ip mpbalctl flowgen

setup()
{
	mpbal_load
	log_test $? "insmod with default parameters" "$MPBAL_LOAD_ERR"
}

# loop_netns NAME PEER MAC: create netns NAME with a veth pair (va in it,
# PEER with MAC in this netns, where nothing routes or counts what arrives)
# and a dummy (dm), an equalize route over va and dm, send 10 local
# datagrams through it, check its stats, delete it. Prints one line:
#   NAME SETUP SYSCTL COUNTED MS [detail]   (1 = ok, 0 = not; MS taken)
loop_netns()
{
	local ns=$1 peer=$2 mac=$3 out setup=0 sysctl=0 counted=0 detail="" t0
	local -A KV=()

	t0=$(now_ms)
	if ip -batch - <<-EOF &&
		netns add $ns
		link add name va address 02:00:00:00:01:01 netns $ns type veth peer name $peer address $mac
		link set $peer up
		link add name dm netns $ns type dummy
	EOF
		ip -n "$ns" -batch - <<-EOF &&
			link set lo up
			link set va up
			link set dm up
			addr add 192.168.1.1/24 dev va
			addr add 192.168.2.1/24 dev dm
			neigh replace 192.168.1.2 lladdr $mac dev va nud permanent
		EOF
		out=$(mpbalctl -n "$ns" route add equalize 10.99.0.0/16 \
			nexthop via 192.168.1.2 dev va nexthop via 192.168.2.2 dev dm 2>&1); then
		# busybox sh: a bash would cost another half second under TCG.
		out=$(ip netns exec "$ns" busybox sh -c '
			[ -d /proc/sys/net/mpbal ] && echo "sysctl yes"
			flowgen udp -d 10.99.0.1 -p 1000-1009 -n 10 -s 32 >/dev/null ||
				echo "flowgen failed"
			cat /proc/net/mpbal/stats' 2>&1)
		kv_parse KV "$out"
		[ "${KV[equalize_routes]:-}" = 1 ] && setup=1
		[ "${KV[sysctl]:-}" = yes ] && sysctl=1
		if [ "${KV[packets_local]:-}" = 10 ] && [ "${KV[steered]:-}" = 10 ]; then
			counted=1
		else
			detail="packets_local=${KV[packets_local]:-} steered=${KV[steered]:-} packets_fwd=${KV[packets_fwd]:-}"
		fi
	else
		detail="setup failed: $(tr '\n' ' ' <<<"$out")"
	fi
	ip netns del "$ns" 2>/dev/null
	echo "$ns $setup $sysctl $counted $(($(now_ms) - t0)) $detail"
}

# 30 netns created and deleted one after the other (each one's teardown
# runs in the kernel's cleanup work while the next is being set up). Two
# parallel loops were tried: under TCG on a shared host they are slower.
test_many_netns()
{
	local i setup=0 sysctl=0 counted=0 total=0 detail="" leftover rc
	local name a b c ms rest min=999999 max=0 sum_ms=0

	local mac
	for i in $(seq 1 30); do
		printf -v mac '02:00:00:00:10:%02x' "$i"
		loop_netns "${NS_PREFIX}loop$i" "mpbpeer$i" "$mac"
	done >"$MPBAL_TMP/loop.out"
	while read -r name a b c ms rest; do
		total=$((total + 1))
		sum_ms=$((sum_ms + ms))
		[ "$ms" -lt "$min" ] && min=$ms
		[ "$ms" -gt "$max" ] && max=$ms
		setup=$((setup + a))
		sysctl=$((sysctl + b))
		counted=$((counted + c))
		[ "$a$b$c" = 111 ] || detail+="${name#"$NS_PREFIX"}: $a$b$c $rest; "
	done <"$MPBAL_TMP/loop.out"
	[ $total -gt 0 ] && log_info "per netns: min $min ms, avg $((sum_ms / total)) ms, max $max ms"

	[ $total -eq 30 ] && [ $setup -eq 30 ]
	log_test $? "30 netns: each got its veth, dummy and equalize route (equalize_routes 1)" \
		"$setup of $total; $detail"
	[ $total -eq 30 ] && [ $sysctl -eq 30 ]
	log_test $? "30 netns: each had /proc/sys/net/mpbal" "$sysctl of $total"
	[ $total -eq 30 ] && [ $counted -eq 30 ]
	log_test $? "30 netns: each counted its 10 local datagrams (packets_local, steered)" \
		"$counted of $total; $detail"
	# The veth peers here vanish once the netns are really dismantled.
	# shellcheck disable=SC2317 # called by wait_until
	_peers_gone() { ! ip -o link show | grep -q ' mpbpeer'; }
	wait_until 30 _peers_gone
	rc=$?
	leftover=$(ip netns list | grep "^${NS_PREFIX}loop" | cut -d' ' -f1)
	[ -z "$leftover" ] && [ $rc -eq 0 ]
	log_test $? "30 netns: all deleted and dismantled (their veth peers gone), none left over" \
		"$leftover $(ip -o link show | grep -o ' mpbpeer[^@:]*' | tr -d '\n')"
	# shellcheck disable=SC2086 # one name per word
	[ -z "$leftover" ] || ns_delete $leftover
}

# S (source) -- R (router: equalize route over a veth to T and a dummy) -- T
test_delete_under_traffic()
{
	local S=${NS_PREFIX}S R=${NS_PREFIX}R T=${NS_PREFIX}T pid rc t0 dt fwd log

	kmsg_mark
	ip -batch - <<-EOF || { log_test 1 "delete under traffic: setup"; return; }
		netns add $S
		netns add $R
		netns add $T
	EOF
	ns_register "$S" "$R" "$T"
	ip -batch - <<-EOF &&
		link add name s0 address 02:00:00:00:02:01 netns $S type veth peer name rs address 02:00:00:00:02:02 netns $R
		link add name u1 address 02:00:00:00:03:01 netns $R type veth peer name t0 address 02:00:00:00:03:02 netns $T
	EOF
		ip -n "$S" -batch - <<-EOF &&
			link set lo up
			link set s0 up
			addr add 10.97.1.2/24 dev s0
			neigh replace 10.97.1.1 lladdr 02:00:00:00:02:02 dev s0 nud permanent
			route add default via 10.97.1.1
		EOF
		ip -n "$T" -batch - <<-EOF &&
			link set lo up
			link set t0 up
			addr add 10.97.2.2/24 dev t0
		EOF
		ip -n "$R" -batch - <<-EOF &&
			link set lo up
			link set rs up
			link set u1 up
			link add u2 type dummy
			link set u2 up
			addr add 10.97.1.1/24 dev rs
			addr add 10.97.2.1/24 dev u1
			addr add 10.97.3.1/24 dev u2
			neigh replace 10.97.1.2 lladdr 02:00:00:00:02:01 dev rs nud permanent
			neigh replace 10.97.2.2 lladdr 02:00:00:00:03:02 dev u1 nud permanent
		EOF
		ns_sysctl "$R" net.ipv4.ip_forward=1 &&
		mpbalctl -n "$R" route add equalize 10.98.0.0/16 \
			nexthop via 10.97.2.2 dev u1 nexthop via 10.97.3.2 dev u2
	log_test $? "delete under traffic: S -> R (equalize route over veth + dummy) -> T set up"

	# About 20 s of traffic if nothing stops it.
	ip netns exec "$S" flowgen udp -d 10.98.0.1,10.98.1.1 -p 3000-3099 -n 10000 -s 64 -r 500 \
		>/dev/null 2>&1 &
	pid=$!
	# shellcheck disable=SC2317 # called by wait_until
	_fwd_seen() { [ "$(ip netns exec "$R" cat /proc/net/mpbal/stats | awk '$1 == "packets_fwd" { print $2 }')" -gt 100 ]; }
	wait_until 20 _fwd_seen
	rc=$?
	fwd=$(ip netns exec "$R" cat /proc/net/mpbal/stats | awk '$1 == "packets_fwd" { print $2 }')
	log_test $rc "delete under traffic: R forwards on its equalize route (packets_fwd > 100)" "packets_fwd $fwd"
	kill -0 "$pid" 2>/dev/null
	log_test $? "delete under traffic: the sender is still running at the delete"

	t0=$(now_ms)
	ip netns del "$R"
	rc=$?
	dt=$(($(now_ms) - t0))
	log_test $rc "delete under traffic: ip netns del R while traffic flows" "${dt} ms"
	# R is dismantled (cleanup_net) once its veth peers vanish from S and T.
	# shellcheck disable=SC2317 # called by wait_until
	_r_gone() { ! ip -n "$S" link show s0 >/dev/null 2>&1 && ! ip -n "$T" link show t0 >/dev/null 2>&1; }
	t0=$(now_ms)
	wait_until 30 _r_gone
	rc=$?
	dt=$(($(now_ms) - t0))
	log_test $rc "delete under traffic: R is dismantled within 30 s (its veths gone from S and T)" "${dt} ms"

	# The sender has lost its route (it counts send errors and goes on);
	# stopping it must not hang.
	kill "$pid" 2>/dev/null
	wait_pid_exit 10 "$pid"
	rc=$?
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	log_test $rc "delete under traffic: the sender stops within 10 s of a kill"

	ns_delete "$S" "$T"
	log=$(kmsg_since | grep -E 'unregister_netdevice: waiting|BUG|WARNING')
	[ -z "$log" ]
	log_test $? "delete under traffic: no 'unregister_netdevice: waiting' or splat in dmesg" "$log"
}

# dst_rx_total: RX_TOTAL = rx packets of dst1 and dst2 on all their links
# (no fork: they are pinned).
RX_TOTAL=""
dst_rx_total()
{
	local ns dev s=0

	RX_TOTAL=""
	for ns in "$NS_DST1" "$NS_DST2"; do
		for dev in eth0 eth1 eth2; do
			ns_dev_get "$ns" $dev rx_packets || return 1
			s=$((s + DEV_STAT))
		done
	done
	RX_TOTAL=$s
}

test_rmmod_under_traffic()
{
	local pid rc t0 dt a0 a1 n=4000 out v st0 st1 tx

	testbed_up || { log_test 1 "rmmod under traffic: testbed up"; return; }
	ns_pin "$NS_BAL" && ns_pin "$NS_DST1" && ns_pin "$NS_DST2" ||
		log_info "no sleepers (reads spawn)"
	testbed_nexthops 1 2 3
	out=$(mpbalctl -n "$NS_BAL" route add equalize "$DST_NET" "${NEXTHOPS[@]}" 2>&1)
	log_test $? "rmmod under traffic: equalize route on the testbed balancer" "$out"
	wait_stat "$NS_BAL" 15 hash_policy managed
	log_test $? "rmmod under traffic: hash policy managed before the flood" \
		"$(mpbal_stat "$NS_BAL" hash_policy)"

	bal_snap S0
	# 4000 datagrams at 500/s: about 8 s; rmmod after 2 s.
	ip netns exec "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 10000-10249 -n $n -s 64 -r 500 \
		>"$MPBAL_TMP/flood.out" 2>&1 &
	pid=$!
	sleep 2
	mpbal_stats "$NS_BAL"
	st0=${ST[steered]:-}
	t0=$(now_ms)
	mpbal_unload
	rc=$?
	dt=$(($(now_ms) - t0))
	# Counted from after rmmod returned: only traffic after the unload.
	dst_rx_total
	a0=$RX_TOTAL
	sleep 1.5
	dst_rx_total
	a1=$RX_TOTAL
	kill -0 "$pid" 2>/dev/null || log_info "the flood had ended by the second sample"
	log_test $rc "rmmod under traffic: rmmod succeeds mid-flood" "steered before: $st0"
	log_info "rmmod took $dt ms; steered $st0 before it"

	rc=0
	[ -e /sys/module/mpbal ] && rc=1
	v=$(ns_sysctl_get "$NS_BAL" net.ipv4.fib_multipath_hash_policy)
	[ "$v" = 0 ] || rc=1
	log_test $rc "rmmod under traffic: module gone, balancer hash policy restored to 0" "hash policy $v"

	rc=1
	[ -n "$a0" ] && [ -n "$a1" ] && [ "$a1" -gt "$a0" ] && rc=0
	log_test $rc "rmmod under traffic: packets keep arriving at dst1/dst2 after the unload" \
		"dst rx $a0 -> $a1"

	wait_pid_exit 60 "$pid"
	wait "$pid"
	rc=$?
	out=$(cat "$MPBAL_TMP/flood.out")
	log_test $rc "rmmod under traffic: flowgen completes the flood" "$out"
	log_info "flood: $out"
	bal_snap S1
	tx=$(snap_d3 S0 S1 tx)
	# shellcheck disable=SC2086 # three numbers
	[ "$(sum $tx)" -eq $n ]
	# shellcheck disable=SC2086 # three numbers
	log_test $? "rmmod under traffic: no datagram lost across the unload (all left by up1..3)" \
		"$(sum $tx) of $n (up1/up2/up3 $tx)"

	mpbal_load
	log_test $? "rmmod under traffic: insmod again" "$MPBAL_LOAD_ERR"
	rc=0
	wait_stat "$NS_BAL" 15 hash_policy managed || rc=1
	[ "$(mpbal_stat "$NS_BAL" equalize_routes)" = 1 ] || rc=1
	log_test $rc "rmmod under traffic: after insmod the route is seen again, hash policy managed" \
		"equalize_routes $(mpbal_stat "$NS_BAL" equalize_routes) hash_policy $(mpbal_stat "$NS_BAL" hash_policy)"
	st0=$(mpbal_stat "$NS_BAL" steered)
	out=$(ip netns exec "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 10000-10149 -n 600 -s 64 2>&1)
	log_info "flowgen: $out"
	st1=$(mpbal_stat "$NS_BAL" steered)
	[ $((st1 - st0)) -eq 600 ]
	log_test $? "rmmod under traffic: steering resumes after insmod (steered +600)" "steered $st0 -> $st1"

	testbed_down
}

# all_netns_read: in every named netns (one ip process, a cat in each),
# read mpbal's stats and the hash policy: A_EQ[ns] (equalize_routes, ""
# without /proc/net/mpbal), A_HP[ns] (stats hash_policy), A_HASH[ns]
# (net.ipv4.fib_multipath_hash_policy).
declare -A A_EQ=() A_HP=() A_HASH=()
all_netns_read()
{
	local line cur="" k v

	A_EQ=()
	A_HP=()
	A_HASH=()
	while IFS= read -r line; do
		if [[ $line == "netns: "* ]]; then
			cur=${line#netns: }
			A_EQ[$cur]=""
			A_HP[$cur]=""
			A_HASH[$cur]=""
			continue
		fi
		[ -n "$cur" ] || continue
		read -r k v <<<"$line"
		case $k in
		equalize_routes) A_EQ[$cur]=$v ;;
		hash_policy) A_HP[$cur]=$v ;;
		[0-9]*) [ -z "$v" ] && A_HASH[$cur]=$k ;;
		esac
	done < <(ip -all netns exec cat /proc/sys/net/ipv4/fib_multipath_hash_policy \
		/proc/net/mpbal/stats 2>/dev/null)
}

# 20 netns with an equalize route each over two dummies (dev nexthops).
test_rmmod_many_netns()
{
	local i ns cmds="" bad=() names=() left rc

	mpbal_loaded || mpbal_load
	for i in $(seq 1 20); do
		ns=${NS_PREFIX}alive$i
		names+=("$ns")
		cmds+="netns add $ns"$'\n'
		cmds+="link add name d1 up netns $ns type dummy"$'\n'
		cmds+="link add name d2 up netns $ns type dummy"$'\n'
	done
	ns_register "${names[@]}"
	ip -batch - <<<"$cmds"
	log_test $? "20 netns: created, each with two dummies"

	bad=()
	for ns in "${names[@]}"; do
		mpbalctl -n "$ns" route add equalize 10.99.0.0/16 nexthop dev d1 nexthop dev d2 ||
			bad+=("${ns#"$NS_PREFIX"}")
	done
	[ ${#bad[@]} -eq 0 ]
	log_test $? "20 netns: mpbalctl route add equalize in each" "failed in: ${bad[*]}"

	# The hash policy is set by a worker: wait until all are 1.
	# shellcheck disable=SC2317 # called by wait_until
	_all_managed()
	{
		local ns

		all_netns_read
		bad=()
		for ns in "${names[@]}"; do
			[ "${A_EQ[$ns]:-}" = 1 ] && [ "${A_HP[$ns]:-}" = managed ] &&
				[ "${A_HASH[$ns]:-}" = 1 ] ||
				bad+=("${ns#"$NS_PREFIX"}:${A_EQ[$ns]:-}/${A_HP[$ns]:-}/${A_HASH[$ns]:-}")
		done
		[ ${#bad[@]} -eq 0 ]
	}
	wait_until 20 _all_managed
	log_test $? "20 netns: each has equalize_routes 1 and mpbal set fib_multipath_hash_policy 1" \
		"not in: ${bad[*]}"

	mpbal_unload
	log_test $? "20 netns: rmmod with 20 netns alive, each with an equalize route"

	all_netns_read
	bad=()
	for ns in "${names[@]}"; do
		[ "${A_HASH[$ns]:-}" = 0 ] || bad+=("${ns#"$NS_PREFIX"}:${A_HASH[$ns]:-}")
	done
	[ ${#bad[@]} -eq 0 ]
	log_test $? "20 netns: after unload fib_multipath_hash_policy is restored to 0 in each" "${bad[*]}"
	bad=()
	for ns in "${names[@]}"; do
		[ -n "${A_EQ[$ns]:-}" ] && bad+=("${ns#"$NS_PREFIX"}")
	done
	[ ${#bad[@]} -eq 0 ] && [ ! -e /proc/net/mpbal ] && [ ! -e /proc/sys/net/mpbal ]
	log_test $? "20 netns: after unload no netns has /proc/net/mpbal" "still in: ${bad[*]}"

	ns_delete "${names[@]}"
	left=$(ip netns list | grep -c "^${NS_PREFIX}alive")
	[ "$left" -eq 0 ]
	log_test $? "20 netns: all deletable after the unload" "$left left"
}

setup
tests_run
mpbal_finish
tests_summary
