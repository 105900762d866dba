#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Uplink state (Documentation/strategies.rst, "Uplink state and tiers"):
# net.mpbal.conf.DEV.down, net.mpbal.conf.DEV.tier and
# net.mpbal.ct_flush_on_down, on a small topology (no routers: the uplinks
# are dummies, whose tx counters count what mpbal sent each way):
#
#   src eth0 10.9.1.2 ---- 10.9.1.1 s1 [ balancer ] up1 10.61.1.1 (gw .2)
#                                       (dummy s2)   up2 10.61.2.1 (gw .2)
#                                                    up3 10.61.3.1 (gw .2)
#
# with an equalize route 10.99.0.0/16 over up1, up2, up3. The balancer is
# the guest's own netns, so that its sysctls and proc files are read and
# written without spawning a process (each spawn costs ~0.1 s under TCG).
#  1. Bad writes (down 2, -1, abc; tier 0, 16, -1, abc; ct_flush_on_down 2)
#     fail with EINVAL and change nothing; the defaults are 0, 1, 0.
#  2. For route, packet, session, flowlet: up2 admin down gets none of the forwarded or
#     local packets, though it had its share just before: route and
#     session re-choose the flows they had stored on it, and new flows
#     never take it; the down and up are counted once each.
#  3. Session: the conntrack marks of connections stored on up2 name
#     another uplink after up2 goes down.
#  4. Tiers: up3 at tier 2 carries nothing while up1 or up2 is usable; it
#     takes everything when both are down (admin down, then one admin down
#     and one link down); with tier 1 back, up3 carries nothing again and
#     the connections it had move back. The same per packet.
#  5. ct_flush_on_down: a down removes the MASQUERADEd connections stored
#     on the uplink, and only those (not those of other uplinks, not
#     un-NATed ones), and counts them; with it off, nothing is removed.
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_tiers.sh
set -u

ALL_TESTS="
	test_bad_writes
	test_admin_down
	test_session_marks
	test_tiers
	test_ct_flush
"

# For its snapshot and conntrack helpers (bal_snap, bal_uplink_ids,
# mark_dev_of): the balancer has testbed.sh's uplink names, and s1, s2;
# testbed_up is not used. The balancer is this netns: NS_BAL "" is what
# ns_read and mpbal_stat take for it, and bal runs commands here.
# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

mpbal_init ip nft jq conntrack flowgen mpbalctl sysctl

NS_BAL=""
bal()
{
	"$@"
}

NS_SRC=${NS_PREFIX}src
D=$MPBAL_SYSCTL_DIR
EQ_NET=10.99.0.0/16
# 60 destinations: 60 flows a run; DSTS2 for destinations not seen before.
DSTS=$(printf '10.99.0.%d,' $(seq 1 60))
DSTS=${DSTS%,}
DSTS2=$(printf '10.99.1.%d,' $(seq 1 60))
DSTS2=${DSTS2%,}

setup()
{
	local i cmds=""

	mpbal_load strategy=session || die "insmod $MPBAL_KO failed: $MPBAL_LOAD_ERR"
	ns_create src || die "netns"
	# Before the devices exist, so that they inherit "default".
	for ns in "" "$NS_SRC"; do
		${ns:+ip netns exec "$ns"} sysctl -qw net.ipv4.ip_forward=1 \
			net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
			net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 ||
			die "sysctls of ${ns:-the balancer}"
	done
	for i in 1 2 3; do
		cmds+="link add up$i type dummy"$'\n'"link set up$i up"$'\n'
		cmds+="addr add 10.61.$i.1/24 dev up$i"$'\n'
	done
	ip -batch - <<-EOF || die "balancer"
	link add s1 type veth peer name eth0 netns $NS_SRC
	link add s2 type dummy
	link set s1 up
	addr add 10.9.1.1/24 dev s1
	$cmds
	EOF
	ip -n "$NS_SRC" -batch - <<-EOF || die "src"
	link set eth0 up
	addr add 10.9.1.2/24 dev eth0
	route add default via 10.9.1.1
	EOF
	mpbalctl route add equalize "$EQ_NET" nexthop via 10.61.1.2 dev up1 \
		nexthop via 10.61.2.2 dev up2 nexthop via 10.61.3.2 dev up3 ||
		die "equalize route"
	wait_stat "" 10 hooks on || die "hooks never on"
	wait_until 5 bal_hash_ready || die "hash policy"
	bal_uplink_ids || die "uplink ids"
}

# conf DEV KEY VALUE: write net.mpbal.conf.DEV.KEY.
conf()
{
	write_raw "$D/conf/$1/$2" "$3" || log_info "conf $1 $2 $3: $WRITE_ERR"
}

# get FILE: net.mpbal's FILE (e.g. conf/up2/down), read without a process.
get()
{
	local v

	read -r v <"$D/$1"
	echo "$v"
}

# send TAG SPORT [LSPORT LDSTS]: 60 UDP flows (one datagram each, twice)
# from src through the balancer, from source port SPORT, and 60 from the
# balancer itself from LSPORT (default SPORT + 1) to LDSTS (default the
# same destinations): forwarded and local packets. The local ones come
# from s1's address: one on an uplink would pin them to that uplink's
# device (Documentation/overview.rst, "Locally generated traffic").
send()
{
	local out

	out=$(ip netns exec "$NS_SRC" flowgen udp -d "$DSTS" -p 7000 -n 120 -s 64 -S "$2") ||
		log_info "$1: src flowgen: $out"
	out=$(flowgen udp -d "${4:-$DSTS}" -p 7000 -n 120 -s 64 -B 10.9.1.1 -S "${3:-$(($2 + 1))}") ||
		log_info "$1: local flowgen: $out"
}

# run TAG SPORT [LSPORT LDSTS]: send, with the uplinks' tx deltas in TX
# ("d1 d2 d3", TXA) and the snapshots in S0, S1.
run()
{
	bal_snap S0
	send "$@"
	bal_snap S1
	TX=$(snap_d3 S0 S1 tx)
	read -r -a TXA <<<"$TX"
}

# 1. Bad writes.
test_bad_writes()
{
	local rc=0 detail="" f v before after

	[ "$(get conf/up2/down)" = 0 ] && [ "$(get conf/up2/tier)" = 1 ] &&
		[ "$(get ct_flush_on_down)" = 0 ]
	log_test $? "defaults: conf.up2.down 0, conf.up2.tier 1, ct_flush_on_down 0"

	for f in "down 2" "down -1" "down abc" "tier 0" "tier 16" "tier -1" "tier abc"; do
		read -r f v <<<"$f"
		before=$(get "conf/up2/$f")
		write_rejected 'Invalid argument' "$D/conf/up2/$f" "$v"$'\n' ||
			{ rc=1; detail+="$f=$v: $REJECT_WHY; "; }
		after=$(get "conf/up2/$f")
		[ "$before" = "$after" ] || { rc=1; detail+="$f=$v: $before -> $after; "; }
	done
	before=$(get ct_flush_on_down)
	write_rejected 'Invalid argument' "$D/ct_flush_on_down" 2 ||
		{ rc=1; detail+="ct_flush_on_down=2: $REJECT_WHY; "; }
	[ "$(get ct_flush_on_down)" = "$before" ] || { rc=1; detail+="ct_flush_on_down changed; "; }
	log_test $rc "bad writes (down 2 -1 abc, tier 0 16 -1 abc, ct_flush_on_down 2): EINVAL, unchanged" "$detail"

	rc=0 detail=""
	for v in 15 1; do
		conf up2 tier "$v"
		[ "$(get conf/up2/tier)" = "$v" ] || { rc=1; detail+="tier $v read $(get conf/up2/tier); "; }
	done
	log_test $rc "tier 15 and 1 are taken" "$detail"
}

# 2. Admin down, every strategy.
test_admin_down()
{
	local s i=0 rc detail dn0 up0 rd sp

	# bandwidth and headroom choose per packet from the same candidates
	# as packet (src/core/tests/tiers.rs covers all six); route, session
	# and flowlet each remember in their own way.
	for s in route packet session flowlet; do
		i=$((i + 1)) sp=$((41000 + 10 * i))
		bal_strategy "$s" || { log_test 1 "admin down $s: strategy"; continue; }
		# Before: up2 gets its share (and route and session store it).
		run "$s before" "$sp"
		rc=0 detail="before: tx $TX; "
		[ "${TXA[1]}" -gt 0 ] || rc=1
		dn0=${S1[u:up2:admin_downs]:-} up0=${S1[u:up2:admin_ups]:-}
		conf up2 down 1
		# The same forwarded flows (remembered by route and session), and
		# local ones to destinations and from a port not seen before.
		run "$s down" "$sp" $((sp + 2)) "$DSTS2"
		rd=$(snap_d S0 S1 s:rechosen_dead)
		detail+="down: tx $TX, rechosen_dead +$rd; "
		[ "${TXA[1]}" -eq 0 ] && [ $((TXA[0] + TXA[2])) -ge 240 ] || rc=1
		case $s in
		route | session) [ "$rd" -gt 0 ] || rc=1 ;;
		esac
		conf up2 down 0
		bal_snap S2
		[ "${S2[u:up2:admin_downs]}" = $((dn0 + 1)) ] && [ "${S2[u:up2:admin_ups]}" = $((up0 + 1)) ] ||
			{ rc=1; detail+="admin_downs $dn0 -> ${S2[u:up2:admin_downs]}, admin_ups $up0 -> ${S2[u:up2:admin_ups]}; "; }
		log_test $rc "admin down $s: up2 had packets, gets none while down (stored choices re-chosen), counted" "$detail"
	done
}

# ct_list: CT = "dport mark nat" of the balancer's UDP conntrack entries
# (nat 1 if the reply goes to another address: source-NATed).
ct_list()
{
	CT=$(conntrack -L -p udp 2>/dev/null |
		awk '{ n = 0; m = 0; s = ""; rd = ""; dp = "";
			for (i = 1; i <= NF; i++) {
				split($i, kv, "=");
				if (kv[1] == "src") { n++; if (n == 1) s = kv[2] }
				else if (kv[1] == "dst" && n == 2) rd = kv[2];
				else if (kv[1] == "dport" && n == 1) dp = kv[2];
				else if (kv[1] == "mark") m = kv[2];
			}
			print dp, m, (rd != s) }')
}

# ct_count PORT DEV NAT: entries of CT to PORT whose mark names DEV ("any"
# for all) and whose NAT flag is NAT ("any" for both).
ct_count()
{
	local p m nat dev n=0

	while read -r p m nat; do
		[ "$p" = "$1" ] || continue
		mark_dev_of dev "$m"
		[ "$2" = any ] || [ "$dev" = "$2" ] || continue
		[ "$3" = any ] || [ "$nat" = "$3" ] || continue
		n=$((n + 1))
	done <<<"$CT"
	echo "$n"
}

# 3. Session: the marks of connections stored on up2 move.
test_session_marks()
{
	local on2 after all rc

	bal_need_strategy session
	conntrack -F >/dev/null 2>&1
	run "marks before" 42000
	ct_list
	on2=$(ct_count 7000 up2 any)
	all=$(ct_count 7000 any any)
	conf up2 down 1
	run "marks down" 42000
	ct_list
	after=$(ct_count 7000 up2 any)
	conf up2 down 0
	log_info "session marks: $all entries, $on2 on up2 before, $after after; tx while down $TX"
	[ "$on2" -gt 0 ] && [ "$after" -eq 0 ] && [ "$(ct_count 7000 any any)" -eq "$all" ]
	rc=$?
	log_test $rc "session: the $on2 connections stored on up2 are stored elsewhere once it is down ($after left)"
}

# phase TAG SPORT WANT: traffic with tier 2 on up3; WANT "tier1" (up3
# gets nothing, up1 + up2 everything) or "tier2" (up3 gets everything).
phase()
{
	local rc

	run "$1" "$2"
	case $3 in
	tier1) [ "${TXA[2]}" -eq 0 ] && [ $((TXA[0] + TXA[1])) -ge 240 ] ;;
	*) [ "${TXA[0]}" -eq 0 ] && [ "${TXA[1]}" -eq 0 ] && [ "${TXA[2]}" -ge 240 ] ;;
	esac
	rc=$?
	log_test $rc "tiers: $1: tx up1/up2/up3 $TX ($3)"
}

_up2_alive()
{
	! ip route show "$EQ_NET" | grep -q dead
}

# 4. Tiers: up3 is the backup.
test_tiers()
{
	local s

	bal_strategy session || log_test 1 "tiers: strategy session"
	conf up3 tier 2
	# The same flows throughout: the session strategy's stored
	# connections must follow too.
	phase "session, tier 1 up" 43000 tier1
	conf up1 down 1
	phase "session, up1 admin down" 43000 tier1
	conf up2 down 1
	phase "session, up1 and up2 admin down" 43000 tier2
	conf up2 down 0
	ip link set up2 down
	phase "session, up1 admin down, up2 link down" 43000 tier2
	ip link set up2 up
	wait_until 5 _up2_alive
	conf up1 down 0
	phase "session, tier 1 back up" 43000 tier1
	# Per packet: the same switch over and back.
	bal_strategy packet || log_test 1 "tiers: strategy packet"
	phase "packet, tier 1 up" 43010 tier1
	conf up1 down 1
	conf up2 down 1
	phase "packet, up1 and up2 admin down" 43010 tier2
	conf up1 down 0
	conf up2 down 0
	phase "packet, tier 1 back up" 43010 tier1
	conf up3 tier 1
}

# 5. ct_flush_on_down with MASQUERADE.
test_ct_flush()
{
	local nat2 nat13 plain2 left2 left13 plainl fl0 fl1 st0 st1 n1 n1b

	bal_need_strategy session
	nft -f - <<-'EOF' || { log_test 1 "ct flush: nft masquerade"; return; }
	table ip tiers_nat {
		chain post {
			type nat hook postrouting priority srcnat; policy accept;
			oifname "up*" udp dport 7001 masquerade
		}
	}
	EOF
	conntrack -F >/dev/null 2>&1
	# 60 flows to :7001 (NATed) and 60 to :7002 (not), from src.
	ip netns exec "$NS_SRC" flowgen udp -d "$DSTS" -p 7001-7002 -n 120 -s 64 -S 44000 >/dev/null
	ct_list
	nat2=$(ct_count 7001 up2 1) nat13=$(($(ct_count 7001 up1 1) + $(ct_count 7001 up3 1)))
	plain2=$(ct_count 7002 up2 0) n1=$(ct_count 7001 up1 1)
	bal_snap S0
	st0=${S0[s:ct_flushed]:-x} fl0=${S0[u:up2:ct_flushed]:-x}
	log_info "ct flush: NATed on up2 $nat2, on up1+up3 $nat13; not NATed on up2 $plain2; ct_flushed $st0, up2 $fl0"

	# Off: nothing goes.
	conf up1 down 1
	ct_list
	n1b=$(ct_count 7001 up1 1)
	conf up1 down 0
	[ "$n1" -gt 0 ] && [ "$n1b" -eq "$n1" ]
	log_test $? "ct flush off: up1 down leaves its $n1 NATed connections ($n1b)"

	write_raw "$D/ct_flush_on_down" 1
	conf up2 down 1
	ct_list
	left2=$(ct_count 7001 up2 1)
	left13=$(($(ct_count 7001 up1 1) + $(ct_count 7001 up3 1)))
	plainl=$(ct_count 7002 up2 0)
	bal_snap S1
	st1=${S1[s:ct_flushed]:-x} fl1=${S1[u:up2:ct_flushed]:-x}
	conf up2 down 0
	write_raw "$D/ct_flush_on_down" 0
	nft delete table ip tiers_nat
	log_info "ct flush: after up2 down: NATed on up2 $left2, on up1+up3 $left13; not NATed on up2 $plainl; ct_flushed $st1, up2 $fl1"
	[ "$nat2" -gt 0 ] && [ "$left2" -eq 0 ]
	log_test $? "ct flush on: up2 down removes its $nat2 NATed connections ($left2 left)"
	[ "$nat13" -gt 0 ] && [ "$left13" -eq "$nat13" ] && [ "$plain2" -gt 0 ] && [ "$plainl" -eq "$plain2" ]
	log_test $? "ct flush on: the others stay (NATed on up1/up3 $left13 of $nat13, un-NATed on up2 $plainl of $plain2)"
	[ "$((st1 - st0))" -eq "$nat2" ] && [ "$((fl1 - fl0))" -eq "$nat2" ]
	log_test $? "ct flush on: counted: stats ct_flushed +$((st1 - st0)), up2 ct_flushed +$((fl1 - fl0)) (want $nat2)"
}

setup
tests_run
mpbal_finish
tests_summary
