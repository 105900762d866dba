# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# The thesis testbed (figure 5.1) in network namespaces. Source it after
# lib.sh, then call testbed_up [--shape] [--no-offload] and testbed_down.
#
#            172.16.1.0/24                      172.20.1.0/24
#   srcA eth0 .2 ---- .1 s1 +----------+ up1 .1 ---- .2 eth0 testa eth1 -- dst1 eth0
#                           | balancer | up2 .1 ---- .2 eth0 testb eth1 -- dst1 eth1
#   srcB eth0 .2 ---- .1 s2 +----------+ up3 .1 ---- .2 eth0 testc eth1 -- dst1 eth2
#            172.16.2.0/24           172.20.2.0/24, 172.20.3.0/24
#                                            testa eth2 -- dst2 eth0
#                                            testb eth2 -- dst2 eth1
#                                            testc eth2 -- dst2 eth2
#
# Router <-> destination links (router .1, destination .2):
#   testa eth1 - dst1 eth0  172.21.1.0/24     testa eth2 - dst2 eth0  172.22.1.0/24
#   testb eth1 - dst1 eth1  172.21.2.0/24     testb eth2 - dst2 eth1  172.22.2.0/24
#   testc eth1 - dst1 eth2  172.21.3.0/24     testc eth2 - dst2 eth2  172.22.3.0/24
#
# Destinations: dst1 has 10.0.1.1/32 and 10.0.1.2/32 on lo, dst2 10.0.2.1/32
# and 10.0.2.2/32. Routers send 10.0.1.0/24 to dst1 and 10.0.2.0/24 to dst2
# over their direct links, and 172.16.0.0/16 back to the balancer. As in the
# thesis, dst1 answers 172.16.0.0/16 and 172.20.0.0/16 via testa and dst2 via
# testb. Sources default-route to the balancer.
#
# The balancer gets NO route to 10.0.0.0/16: a test adds the one it studies
# (testbed_multipath_route for the stock ECMP baseline, or mpbalctl for an
# equalize route).
#
# So that link counters count only test traffic: IPv6 is disabled (no RS,
# DAD or MLD packets), every veth has a fixed MAC and both ends have
# permanent neighbour entries (no ARP ever). ip_forward=1 on the balancer
# and routers, rp_filter=0 everywhere (replies come back on other uplinks).
#
# --shape puts a tbf on the balancer's egress of each uplink: up1 1 Mbit,
# up2 and up3 10 Mbit (the thesis: one slow uplink, the others fast).
# --no-offload turns TSO/GSO/GRO off on every veth, so one TCP segment is
# one packet on the wire (per-packet balancing sees real packets).

if [ -z "${MPBAL_LIB_SH:-}" ]; then
	# shellcheck source=selftests/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

# Namespaces (real names; lib.sh's prefix keeps them unique per run).
export NS_SRCA=${NS_PREFIX}srcA NS_SRCB=${NS_PREFIX}srcB
export NS_BAL=${NS_PREFIX}balancer
export NS_TESTA=${NS_PREFIX}testa NS_TESTB=${NS_PREFIX}testb NS_TESTC=${NS_PREFIX}testc
export NS_DST1=${NS_PREFIX}dst1 NS_DST2=${NS_PREFIX}dst2

# Addresses.
export SRCA_IP=172.16.1.2 SRCB_IP=172.16.2.2
export BAL_S1_IP=172.16.1.1 BAL_S2_IP=172.16.2.1
export UP1=up1 UP2=up2 UP3=up3
export UP1_IP=172.20.1.1 UP2_IP=172.20.2.1 UP3_IP=172.20.3.1
export UP1_GW=172.20.1.2 UP2_GW=172.20.2.2 UP3_GW=172.20.3.2
export DST1_IP1=10.0.1.1 DST1_IP2=10.0.1.2 DST2_IP1=10.0.2.1 DST2_IP2=10.0.2.2
export DST_NET=10.0.0.0/16 SRC_NET=172.16.0.0/16
# Comma list for flowgen -d.
export DST_ALL=$DST1_IP1,$DST1_IP2,$DST2_IP1,$DST2_IP2

TB_UPLINKS=("$UP1" "$UP2" "$UP3")
TB_GWS=("$UP1_GW" "$UP2_GW" "$UP3_GW")
TB_DSTS=("$DST1_IP1" "$DST1_IP2" "$DST2_IP1" "$DST2_IP2")
TB_NS=("$NS_SRCA" "$NS_SRCB" "$NS_BAL" "$NS_TESTA" "$NS_TESTB" "$NS_TESTC"
	"$NS_DST1" "$NS_DST2")

# Shaping (--shape): rate, bucket and queue per uplink. Buckets are large
# enough for TCG's coarse timers; latency bounds the queue.
TB_SHAPE_RATES=(1mbit 10mbit 10mbit)
TB_SHAPE_BURSTS=(16k 64k 64k)
TB_SHAPE_LATENCY=200ms

# The veth links: "NS_A DEV_A ADDR_A NS_B DEV_B ADDR_B". The link number
# (1-based position) goes into both MACs: 02:00:00:00:LL:01 on side A,
# 02:00:00:00:LL:02 on side B.
_tb_links()
{
	TB_LINKS=(
		"$NS_SRCA eth0 $SRCA_IP/24 $NS_BAL s1 $BAL_S1_IP/24"
		"$NS_SRCB eth0 $SRCB_IP/24 $NS_BAL s2 $BAL_S2_IP/24"
		"$NS_BAL up1 $UP1_IP/24 $NS_TESTA eth0 $UP1_GW/24"
		"$NS_BAL up2 $UP2_IP/24 $NS_TESTB eth0 $UP2_GW/24"
		"$NS_BAL up3 $UP3_IP/24 $NS_TESTC eth0 $UP3_GW/24"
		"$NS_TESTA eth1 172.21.1.1/24 $NS_DST1 eth0 172.21.1.2/24"
		"$NS_TESTB eth1 172.21.2.1/24 $NS_DST1 eth1 172.21.2.2/24"
		"$NS_TESTC eth1 172.21.3.1/24 $NS_DST1 eth2 172.21.3.2/24"
		"$NS_TESTA eth2 172.22.1.1/24 $NS_DST2 eth0 172.22.1.2/24"
		"$NS_TESTB eth2 172.22.2.1/24 $NS_DST2 eth1 172.22.2.2/24"
		"$NS_TESTC eth2 172.22.3.1/24 $NS_DST2 eth2 172.22.3.2/24"
	)
}

# _tb_routes NS: sets TB_ROUTES to that namespace's `ip route add` args.
_tb_routes()
{
	local ns=$1 r x

	TB_ROUTES=()
	case $ns in
	"$NS_SRCA") TB_ROUTES=("default via $BAL_S1_IP dev eth0") ;;
	"$NS_SRCB") TB_ROUTES=("default via $BAL_S2_IP dev eth0") ;;
	"$NS_TESTA" | "$NS_TESTB" | "$NS_TESTC")
		case $ns in
		"$NS_TESTA") r=1 ;;
		"$NS_TESTB") r=2 ;;
		*) r=3 ;;
		esac
		TB_ROUTES=("10.0.1.0/24 via 172.21.$r.2 dev eth1"
			"10.0.2.0/24 via 172.22.$r.2 dev eth2"
			"$SRC_NET via 172.20.$r.1 dev eth0")
		;;
	"$NS_DST1" | "$NS_DST2")
		# dst1 returns via testa (its eth0), dst2 via testb (its eth1).
		if [ "$ns" = "$NS_DST1" ]; then x="172.21.1.1 dev eth0"; else x="172.22.2.1 dev eth1"; fi
		TB_ROUTES=("$SRC_NET via $x" "172.20.0.0/16 via $x")
		;;
	esac
}

# testbed_up [--shape] [--no-offload]
testbed_up()
{
	local shape=0 nooffload=0 ns a da ipa b db ipb n=0 fwd mac_a mac_b
	local nscmds="" vethcmds="" l r
	local -A batch=() devs=()

	while [ $# -gt 0 ]; do
		case $1 in
		--shape) shape=1 ;;
		--no-offload) nooffload=1 ;;
		*) echo "testbed_up: unknown option $1" >&2; return 2 ;;
		esac
		shift
	done

	# Spawning a process costs ~100+ ms under TCG, so everything is
	# batched: one `ip -batch` makes the namespaces, one sysctl per
	# namespace, one `ip -batch` makes every veth directly in its
	# namespaces, one `ip -batch` per namespace configures it.
	_tb_links
	for ns in "${TB_NS[@]}"; do
		nscmds+="netns add $ns"$'\n'
		batch[$ns]="link set lo up"$'\n'
	done
	for l in "${TB_LINKS[@]}"; do
		read -r a da ipa b db ipb <<<"$l"
		n=$((n + 1))
		printf -v mac_a '02:00:00:00:%02x:01' $n
		printf -v mac_b '02:00:00:00:%02x:02' $n
		vethcmds+="link add name $da address $mac_a netns $a type veth peer name $db address $mac_b netns $b"$'\n'
		batch[$a]+="link set $da up"$'\n'"addr add $ipa dev $da"$'\n'
		batch[$a]+="neigh replace ${ipb%/*} lladdr $mac_b dev $da nud permanent"$'\n'
		batch[$b]+="link set $db up"$'\n'"addr add $ipb dev $db"$'\n'
		batch[$b]+="neigh replace ${ipa%/*} lladdr $mac_a dev $db nud permanent"$'\n'
		devs[$a]+="$da "
		devs[$b]+="$db "
	done
	batch[$NS_DST1]+="addr add $DST1_IP1/32 dev lo"$'\n'"addr add $DST1_IP2/32 dev lo"$'\n'
	batch[$NS_DST2]+="addr add $DST2_IP1/32 dev lo"$'\n'"addr add $DST2_IP2/32 dev lo"$'\n'
	for ns in "${TB_NS[@]}"; do
		_tb_routes "$ns"
		for r in "${TB_ROUTES[@]}"; do
			batch[$ns]+="route add $r"$'\n'
		done
	done

	ns_register "${TB_NS[@]}"
	ip -batch - <<<"$nscmds" || return 1
	for ns in "${TB_NS[@]}"; do
		case $ns in
		"$NS_BAL" | "$NS_TESTA" | "$NS_TESTB" | "$NS_TESTC") fwd=1 ;;
		*) fwd=0 ;;
		esac
		# Before the veths exist, so they inherit "default": no IPv6
		# (no RS/DAD/MLD packets), no reverse-path filter.
		ns_sysctl "$ns" net.ipv4.ip_forward=$fwd \
			net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1 \
			net.ipv4.conf.all.rp_filter=0 \
			net.ipv4.conf.default.rp_filter=0 || return 1
	done
	ip -batch - <<<"$vethcmds" || return 1
	for ns in "${TB_NS[@]}"; do
		ip -n "$ns" -batch - <<<"${batch[$ns]}" || {
			echo "testbed_up: configuring $ns failed" >&2
			return 1
		}
	done

	if [ "$nooffload" = 1 ]; then
		# One netns exec per namespace, ethtool per device inside it.
		for ns in "${TB_NS[@]}"; do
			# shellcheck disable=SC2016 # expanded by the inner bash
			ip netns exec "$ns" bash -c 'for d; do
				ethtool -K "$d" tso off gso off gro off || exit 1
				done' _ ${devs[$ns]} >/dev/null 2>&1 || {
				echo "testbed_up: ethtool -K failed in $ns" >&2
				return 1
			}
		done
	fi
	if [ "$shape" = 1 ]; then
		testbed_shape || return 1
	fi
	return 0
}

# testbed_shape: tbf on the balancer's uplinks (see TB_SHAPE_*).
testbed_shape()
{
	local i

	for i in 0 1 2; do
		tc -n "$NS_BAL" qdisc replace dev "${TB_UPLINKS[i]}" root tbf \
			rate "${TB_SHAPE_RATES[i]}" burst "${TB_SHAPE_BURSTS[i]}" \
			latency "$TB_SHAPE_LATENCY" || return 1
	done
}

testbed_unshape()
{
	local dev

	for dev in "${TB_UPLINKS[@]}"; do
		tc -n "$NS_BAL" qdisc del dev "$dev" root 2>/dev/null
	done
	return 0
}

testbed_down()
{
	ns_delete "${TB_NS[@]}"
}

# testbed_multipath_route [W1 W2 W3]: the stock (non-equalize) multipath
# route to $DST_NET on the balancer, weights default 1 1 1. Replaces any
# existing route to $DST_NET.
testbed_multipath_route()
{
	local w=("${1:-1}" "${2:-1}" "${3:-1}") i args=()

	for i in 0 1 2; do
		args+=(nexthop via "${TB_GWS[i]}" dev "${TB_UPLINKS[i]}" weight "${w[i]}")
	done
	ip -n "$NS_BAL" route replace "$DST_NET" "${args[@]}"
}

testbed_route_del()
{
	ip -n "$NS_BAL" route del "$DST_NET" 2>/dev/null
	return 0
}

# testbed_uplink_tx STAT: the balancer's uplink counters ("tx_packets" or
# "tx_bytes"), space separated in up1 up2 up3 order.
testbed_uplink_tx()
{
	link_stats "$NS_BAL" "${1:-tx_packets}" "${TB_UPLINKS[@]}"
}
