#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A router-grade data path on the thesis testbed (Documentation/overview.rst:
# "Uplinks and connection marks", "Locally generated traffic", "Conntrack",
# "fib_multipath_hash_policy"):
#  - uplink ids: an uplink with ifindex 70000 and two gateways on one
#    device are three uplinks; under session each UDP flow stays on one of
#    them (one destination MAC per flow on up1), its mark names it, and no
#    mark overflows;
#  - IPsec: UDP from the balancer to a subnet behind the equalize route that
#    a tunnel-mode ESP policy covers leaves only as ESP, under every
#    strategy, and the SA counts every datagram;
#  - pinned output: SO_BINDTODEVICE, IP_UNICAST_IF, IP_PKTINFO's ifindex and
#    a VRF keep packets on their device under the packet strategy;
#  - source address: replies of TCP connections to the balancer's address
#    on up1 leave only by up1, under every strategy;
#  - inbound: replies of port-forwarded (DNAT) connections that came in on
#    up2 leave only by up2, under every strategy;
#  - hash policy: mpbal never restores it over what the admin wrote after
#    it; forwarded packets reach fq_codel with their full-range hash.
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_router.sh
set -u

# Independent: each test sets up the route and strategy it needs.
ALL_TESTS="
	test_uplink_ids
	test_ipsec
	test_pinned
	test_source_address
	test_inbound_dnat
	test_hash_policy_admin
	test_full_range_hash
"

# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

mpbal_init ip tc nft jq conntrack flowgen mpbalctl timeout tcpdump

# A second gateway on up1 (its MAC answers nothing: the tests count what
# the balancer sends) and a fourth uplink whose ifindex needs 17 bits.
UP1_GW2=172.20.1.3
UP1_GW2_MAC=02:00:00:00:ff:01
UP4=up4
UP4_IFINDEX=70000
UP4_IP=172.20.4.1
UP4_GW=172.20.4.2

# tx_deltas A B: "up1 up2 up3" link tx packet deltas between snapshots.
tx_deltas()
{
	snap_d3 "$1" "$2" tx
}

# eq_route3 [W1 W2 W3]: the plain 1:1:1 (or given) equalize route.
eq_route3()
{
	bal_eq_route "${1:-1}" "${2:-1}" "${3:-1}"
}

# each_strategy FN ARGS..: FN NAME ARGS.. for every strategy the module has.
each_strategy()
{
	local fn=$1 s

	shift
	mpbal_strategies || { log_test 1 "setup: the module's strategy names"; return; }
	for s in "${MPBAL_STRATEGIES[@]}"; do
		bal_strategy "$s" || { log_test 1 "setup: strategy $s"; continue; }
		"$fn" "$s" "$@"
	done
}

##
## Uplink ids.
##

uplinks_setup()
{
	ip -n "$NS_BAL" link show "$UP4" >/dev/null 2>&1 && return 0
	ip -n "$NS_BAL" link add "$UP4" index "$UP4_IFINDEX" type veth peer name eth3 netns "$NS_TESTC" &&
		ip -n "$NS_BAL" addr add "$UP4_IP/24" dev "$UP4" &&
		ip -n "$NS_BAL" link set "$UP4" up &&
		ip -n "$NS_TESTC" addr add "$UP4_GW/24" dev eth3 &&
		ip -n "$NS_TESTC" link set eth3 up &&
		ip -n "$NS_BAL" neigh replace "$UP1_GW2" lladdr "$UP1_GW2_MAC" dev "$UP1" nud permanent
}

test_uplink_ids()
{
	local out rc ids n id d gw per=() bad="" k f macs nflows=60 caps
	local -A flow_id=() flow_macs=() count=()

	uplinks_setup || { log_test 1 "ids: up4 (ifindex $UP4_IFINDEX) and a second gateway on up1"; return; }
	bal_strategy session || { log_test 1 "ids: strategy session"; return; }
	bal mpbalctl route replace equalize "$DST_NET" \
		nexthop via "$UP1_GW" dev "$UP1" nexthop via "$UP1_GW2" dev "$UP1" \
		nexthop via "$UP4_GW" dev "$UP4" || { log_test 1 "ids: equalize route"; return; }
	wait_until 5 bal_hash_ready
	wait_until 5 eval '[ "$(mpbal_stat "$NS_BAL" conntrack)" = held ]'
	bal_uplink_ids || { log_test 1 "ids: uplinks table"; return; }
	ids=$(for id in "${!ID_DEV[@]}"; do echo "$id=${ID_DEV[$id]}"; done | sort | tr '\n' ' ')
	log_info "ids: uplinks $ids"
	n=0
	for id in "${!ID_DEV[@]}"; do
		read -r d gw <<<"${ID_DEV[$id]}"
		case "$d $gw" in
		"$UP1 $UP1_GW" | "$UP1 $UP1_GW2" | "$UP4 $UP4_GW") n=$((n + 1)) ;;
		esac
	done
	[ "$n" -eq 3 ] && [ ${#ID_DEV[@]} -eq 3 ]
	log_test $? "ids: up1 via .2, up1 via .3 and up4 (ifindex $UP4_IFINDEX) are three uplinks: $ids"

	caps=$MPBAL_TMP/ids.pcap
	bg_start CAP 120 "$NS_BAL" tcpdump -Z root -n -e -i "$UP1" -w "$caps" udp
	sleep 2
	bal_snap S0
	out=$(timeout 60 ip netns exec "$NS_SRCA" flowgen udp -d "$DST1_IP1" -p 7300-$((7300 + nflows - 1)) -n $((nflows * 5)) -s 64)
	rc=$?
	sleep 1
	bal_snap S1
	bg_stop CAP
	log_info "ids: $out"
	[ "$(snap_d S0 S1 s:mark_overflow)" -eq 0 ]
	log_test $? "ids: mark_overflow +$(snap_d S0 S1 s:mark_overflow) (ifindex $UP4_IFINDEX fits: marks hold ids)"

	# The mark of each flow, and the MACs its datagrams went to on up1.
	while read -r k f; do
		mark_id_of "flow_id[$k]" "$f"
	done < <(bal conntrack -L -p udp 2>/dev/null | awk '{ dp = ""; m = 0;
		for (i = 1; i <= NF; i++) { split($i, kv, "=");
			if (kv[1] == "dport" && dp == "") dp = kv[2];
			else if (kv[1] == "mark") m = kv[2]; }
		if (dp >= 7300 && dp < 7400) print dp, m }')
	# "... SRCMAC > DSTMAC, ethertype IPv4 ...: SADDR.SPORT > DADDR.DPORT: UDP"
	while read -r k macs; do
		flow_macs[$k]=$macs
	done < <(ip netns exec "$NS_BAL" tcpdump -Z root -n -e -r "$caps" 2>/dev/null |
		awk '{ n = 0; mac = ""; port = "";
			for (i = 1; i <= NF; i++) if ($i == ">") {
				n++;
				if (n == 1) { mac = $(i + 1); sub(",", "", mac); }
				if (n == 2) { p = $(i + 1); sub(":$", "", p); k = split(p, a, "."); port = a[k]; }
			}
			if (port != "") print port, mac }' | sort -u |
		awk '{ m[$1] = m[$1] " " $2 } END { for (k in m) print k, m[k] }')
	# up1's first gateway is testa: its MAC is whatever the balancer resolved.
	gw1_mac=$(ip -n "$NS_BAL" neigh show "$UP1_GW" dev "$UP1" | awk '{ print $3; exit }')
	for k in "${!flow_id[@]}"; do
		id=${flow_id[$k]}
		count[$id]=$((${count[$id]:-0} + 1))
		read -r d gw <<<"${ID_DEV[$id]:-none none}"
		macs=${flow_macs[$k]:-}
		case "$d $gw" in
		"$UP1 $UP1_GW") [ -n "$gw1_mac" ] && [ "$macs" = "$gw1_mac" ] || bad+=" $k:id$id:$macs" ;;
		"$UP1 $UP1_GW2") [ "$macs" = "$UP1_GW2_MAC" ] || bad+=" $k:id$id:$macs" ;;
		"$UP4 $UP4_GW") [ -z "$macs" ] || bad+=" $k:id$id:$macs" ;;
		*) bad+=" $k:id$id(unknown)" ;;
		esac
	done
	[ "$rc" -eq 0 ] && [ ${#flow_id[@]} -eq "$nflows" ] && [ -z "$bad" ]
	log_test $? "ids: each of ${#flow_id[@]} flows (want $nflows) left by the one uplink its mark names" \
		"mismatches:${bad:- none}"
	for id in "${!ID_DEV[@]}"; do per+=("${count[$id]:-0}"); done
	shares_within "${per[*]}" "1 1 1" 2
	log_test $? "ids: flows per uplink ${per[*]} = $((nflows / 3)) each +-2"

	# An admin pins up4's id; the others keep theirs.
	bal sysctl -qw "net.mpbal.conf.$UP4.uplink_id=7" || { log_test 1 "ids: pin up4 to id 7"; return; }
	wait_until 5 eval 'bal_uplink_ids && [ "${DEV_ID[$UP4]:-}" = 7 ]'
	log_test $? "ids: net.mpbal.conf.$UP4.uplink_id=7 gives up4 id ${DEV_ID[$UP4]:-?}"
	bal sysctl -qw "net.mpbal.conf.$UP4.uplink_id=0"
	bal mpbalctl route del "$DST_NET" >/dev/null 2>&1
}

##
## Locally generated traffic.
##

IPSEC_ENC=0x000102030405060708090a0b0c0d0e0f
IPSEC_AUTH=0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f

ipsec_setup()
{
	bal ip xfrm state show | grep -q "spi 0x00000100" && return 0
	bal ip xfrm state add src "$UP1_IP" dst "$UP1_GW" proto esp spi 0x100 mode tunnel \
		enc 'cbc(aes)' "$IPSEC_ENC" auth 'hmac(sha256)' "$IPSEC_AUTH" &&
		bal ip xfrm policy add src 0.0.0.0/0 dst 10.0.2.0/24 dir out \
			tmpl src "$UP1_IP" dst "$UP1_GW" proto esp mode tunnel
}

# ipsec_packets: packets the SA has protected so far.
ipsec_packets()
{
	bal ip -s xfrm state show | awk '/lifetime current:/ { getline; print $2; exit }' |
		sed 's/(packets)//'
}

ipsec_round()
{
	local s=$1 out before after

	before=$(ipsec_packets)
	out=$(timeout 60 ip netns exec "$NS_BAL" flowgen udp -d "$DST2_IP1,$DST2_IP2" -p 7400-7449 -n 100 -s 64)
	after=$(ipsec_packets)
	IPSEC_SENT=$((IPSEC_SENT + $(flowgen_sent "$out")))
	[ $((after - before)) -eq 100 ]
	log_test $? "ipsec $s: the SA counts every datagram (+$((after - before)) of 100)"
}

test_ipsec()
{
	local i clear esp caps=() d

	eq_route3 || { log_test 1 "ipsec: equalize route"; return; }
	ipsec_setup || { log_test 1 "ipsec: ESP tunnel state and policy for 10.0.2.0/24"; return; }
	for i in 0 1 2; do
		d=${TB_UPLINKS[i]}
		caps[i]=$MPBAL_TMP/ipsec-$d.pcap
		bg_start "CAP$i" 300 "$NS_BAL" tcpdump -Z root -n -i "$d" -w "${caps[i]}" \
			"udp dst portrange 7400-7449 or esp"
	done
	sleep 2
	IPSEC_SENT=0
	each_strategy ipsec_round
	sleep 1
	for i in 0 1 2; do
		bg_stop "CAP$i"
		log_info "ipsec: tcpdump ${TB_UPLINKS[i]}: $(bg_out "CAP$i" | tr '\n' ' ')"
	done
	clear=0 esp=0
	for i in 0 1 2; do
		clear=$((clear + $(bal tcpdump -Z root -n -r "${caps[i]}" udp 2>/dev/null | wc -l)))
		esp=$((esp + $(bal tcpdump -Z root -n -r "${caps[i]}" esp 2>/dev/null | wc -l)))
	done
	log_info "ipsec: sent $IPSEC_SENT, on the uplinks: $clear cleartext, $esp ESP"
	[ "$clear" -eq 0 ]
	log_test $? "ipsec: 0 cleartext datagrams on the uplinks under every strategy (saw $clear)"
	[ "$esp" -eq "$IPSEC_SENT" ] && [ "$IPSEC_SENT" -gt 0 ]
	log_test $? "ipsec: every datagram left as ESP ($esp of $IPSEC_SENT)"
	bal ip xfrm policy flush
	bal ip xfrm state flush
}

# pinned_case WHAT DEV FLOWGEN_ARGS..: 300 datagrams over 50 flows under the
# packet strategy, pinned by FLOWGEN_ARGS to DEV: all leave by DEV.
pinned_case()
{
	local what=$1 dev=$2 out tx want i

	shift 2
	bal_snap P0
	out=$(timeout 60 ip netns exec "$NS_BAL" flowgen udp -d "$DST_ALL" -p 7500-7549 -n 300 -s 64 "$@")
	bal_snap P1
	tx=$(tx_deltas P0 P1)
	want=""
	for i in 0 1 2; do
		[ "${TB_UPLINKS[i]}" = "$dev" ] && want+="300 " || want+="0 "
	done
	log_info "pinned $what: $out; tx up1/up2/up3 $tx; local_pinned +$(snap_d P0 P1 s:local_pinned) local_src_pinned +$(snap_d P0 P1 s:local_src_pinned)"
	[ "$tx " = "$want" ]
	log_test $? "pinned $what: all 300 datagrams left by $dev (tx $tx)"
}

vrf_setup()
{
	ip -n "$NS_BAL" link show red >/dev/null 2>&1 && return 0
	ip -n "$NS_BAL" -batch - <<-EOF
	link add red type vrf table 100
	link set red up
	link add d0 type dummy
	link add d1 type dummy
	link set d0 master red
	link set d1 master red
	link set d0 up
	link set d1 up
	addr add 10.9.1.1/24 dev d0
	addr add 10.9.2.1/24 dev d1
	EOF
}

test_pinned()
{
	local out t0 t1 a b c d

	eq_route3 || { log_test 1 "pinned: equalize route"; return; }
	bal_strategy packet || { log_test 1 "pinned: strategy packet"; return; }
	pinned_case "SO_BINDTODEVICE up2" "$UP2" -I "$UP2" -B "$BAL_S1_IP"
	pinned_case "IP_UNICAST_IF up3" "$UP3" -U "$UP3" -B "$BAL_S1_IP"
	# No source address: the kernel takes up1's for the pinned route.
	pinned_case "IP_PKTINFO ifindex up1" "$UP1" -K "$UP1"

	# A VRF: an equalize route in its table, a socket in the VRF, one flow.
	vrf_setup || { log_test 1 "pinned vrf: VRF red with d0, d1"; return; }
	bal mpbalctl route replace equalize 10.9.0.0/16 nexthop dev d0 nexthop dev d1 table 100 ||
		{ log_test 1 "pinned vrf: equalize route in table 100"; return; }
	t0=$(bal cat /sys/class/net/d0/statistics/tx_packets /sys/class/net/d1/statistics/tx_packets | tr '\n' ' ')
	out=$(timeout 60 ip netns exec "$NS_BAL" flowgen udp -d 10.9.5.5 -p 7600 -n 200 -s 64 -I red)
	t1=$(bal cat /sys/class/net/d0/statistics/tx_packets /sys/class/net/d1/statistics/tx_packets | tr '\n' ' ')
	read -r a b <<<"$t0"
	read -r c d <<<"$t1"
	a=$((c - a)) b=$((d - b))
	log_info "pinned vrf: $out; d0 +$a d1 +$b"
	{ [ "$a" -eq 200 ] && [ "$b" -eq 0 ]; } || { [ "$a" -eq 0 ] && [ "$b" -eq 200 ]; }
	log_test $? "pinned vrf: a flow of a socket in the VRF stays on one nexthop (d0 +$a, d1 +$b)"
	bal mpbalctl route del 10.9.0.0/16 table 100 >/dev/null 2>&1
}

# replies_round WHAT NS DADDR PORT SADDR UPLINK COUNTER..: 4 TCP transfers
# from NS (source SADDR) to DADDR:PORT on the balancer or behind it; all of
# them complete and the balancer's replies left only by uplink UPLINK (1-3).
# REPLY_TX: the three uplinks' tx deltas. The COUNTERs' deltas are logged.
replies_round()
{
	local what=$1 ns=$2 daddr=$3 port=$4 saddr=$5 up=$6 out rc c info="" i t

	shift 6
	bal_snap R0
	out=$(timeout 60 ip netns exec "$ns" flowgen tcp -d "$daddr" -p "$port" -c 4 -P 2 -b 100000 -B "$saddr" -t 50)
	rc=$?
	bal_snap R1
	REPLY_TX=$(tx_deltas R0 R1)
	for c in "$@"; do info+=" $c +$(snap_d R0 R1 "s:$c")"; done
	log_info "$what: $out; balancer tx up1/up2/up3 $REPLY_TX;$info"
	read -r -a t <<<"$REPLY_TX"
	[ "$rc" -eq 0 ] || return 1
	for i in 0 1 2; do
		if [ $((i + 1)) -eq "$up" ]; then
			[ "${t[i]}" -gt 0 ] || return 1
		else
			[ "${t[i]}" -eq 0 ] || return 1
		fi
	done
}

source_round()
{
	replies_round "source $1" "$NS_DST1" "$UP1_IP" 5003 "$DST1_IP1" 1 local_src_pinned
	log_test $? "source $1: replies from the balancer's up1 address left only by up1 (tx $REPLY_TX)"
}

test_source_address()
{
	eq_route3 || { log_test 1 "source: equalize route"; return; }
	bal flowgen tcp-server -p 5003 -B "$UP1_IP" -D >/dev/null ||
		{ log_test 1 "source: a TCP server on $UP1_IP"; return; }
	each_strategy source_round
}

dnat_setup()
{
	bal nft list table ip mpbal_dnat >/dev/null 2>&1 && return 0
	bal nft -f - <<-EOF || return 1
	table ip mpbal_dnat {
		chain pre {
			type nat hook prerouting priority dstnat; policy accept;
			iifname "$UP2" tcp dport 8080 dnat to $SRCA_IP:5004
		}
	}
	EOF
	ip netns exec "$NS_SRCA" flowgen tcp-server -p 5004 -D >/dev/null
}

dnat_round()
{
	replies_round "inbound $1" "$NS_DST2" "$UP2_IP" 8080 "$DST2_IP1" 2 inbound_recorded inbound_replies
	log_test $? "inbound $1: replies of port-forwarded connections from up2 left only by up2 (tx $REPLY_TX)"
}

test_inbound_dnat()
{
	eq_route3 || { log_test 1 "inbound: equalize route"; return; }
	dnat_setup || { log_test 1 "inbound: DNAT $UP2_IP:8080 -> $SRCA_IP:5004"; return; }
	each_strategy dnat_round
}

##
## The hash policy and the skb hash.
##

hash_policy() { ns_sysctl_get "$NS_BAL" net.ipv4.fib_multipath_hash_policy; }

test_hash_policy_admin()
{
	local v

	bal mpbalctl route del "$DST_NET" >/dev/null 2>&1
	wait_stat "$NS_BAL" 5 hash_policy idle
	ns_sysctl "$NS_BAL" net.ipv4.fib_multipath_hash_policy=0
	eq_route3 || { log_test 1 "hash policy: equalize route"; return; }
	v=$(hash_policy)
	[ "$v" = 1 ] && [ "$(mpbal_stat "$NS_BAL" hash_policy)" = managed ]
	log_test $? "hash policy: mpbal set it 0 -> 1 for the equalize route (now $v)"
	# The admin writes it after mpbal: the same value, but theirs now.
	ns_sysctl "$NS_BAL" net.ipv4.fib_multipath_hash_policy=1
	bal mpbalctl route del "$DST_NET"
	wait_stat "$NS_BAL" 5 hooks off
	v=$(hash_policy)
	[ "$v" = 1 ]
	log_test $? "hash policy: left at the admin's 1 when the route goes (not restored to 0; now $v)"
}

# fq_codel's buckets on up1 while 200 flows queue there: the class ids of
# the active flows are bucket + 1, out of 1024.
test_full_range_hash()
{
	local out hi=0 n=0 c i

	eq_route3 || { log_test 1 "hash: equalize route"; return; }
	bal_strategy packet || { log_test 1 "hash: strategy packet"; return; }
	tc -n "$NS_BAL" qdisc replace dev "$UP1" root handle 1: tbf rate 200kbit burst 4k latency 2s &&
		tc -n "$NS_BAL" qdisc add dev "$UP1" parent 1:1 handle 10: fq_codel flows 1024 limit 10240 ||
		{ log_test 1 "hash: tbf + fq_codel on up1"; return; }
	bg_start FLOOD 60 "$NS_SRCA" flowgen udp -d "$DST_ALL" -p 20000-20199 -n 30000 -s 200 -r 1500
	# Until the queue holds 20 flows (a loaded host starts the sender late).
	for ((i = 0; i < 20; i++)); do
		sleep 1
		out=$(tc -n "$NS_BAL" class show dev "$UP1" | awk '$2 == "fq_codel" { split($3, c, ":"); print c[2] }')
		n=0 hi=0
		for c in $out; do
			n=$((n + 1))
			[ $((16#$c)) -gt "$hi" ] && hi=$((16#$c))
		done
		[ "$n" -ge 20 ] && break
	done
	bg_stop FLOOD
	tc -n "$NS_BAL" qdisc del dev "$UP1" root
	log_info "hash: $n active fq_codel flows on up1, highest bucket $hi"
	# up1's hash slice is the first third of the range (buckets up to 341).
	[ "$n" -ge 20 ] && [ "$hi" -gt 512 ]
	log_test $? "hash: packets reach up1's fq_codel with full-range hashes ($n flows, highest bucket $hi > 512)"
}

setup()
{
	mpbal_load || die "insmod $MPBAL_KO failed: $MPBAL_LOAD_ERR"
	testbed_up --no-offload || die "testbed_up failed"
}

setup
tests_run
mpbal_finish
tests_summary
