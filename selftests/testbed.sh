# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# The thesis testbed (figure 5.1) in network namespaces and the helpers of
# the suites on it. Source it (it sources lib.sh); testbed_up builds it.
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
#
# Testbed:   testbed_up, testbed_down, testbed_shape, testbed_jumbo [MTU] (MTU
#            9000 from the sources to the routers), testbed_delay D1 D2 D3
#            (netem on the paths via testa/b/c), testbed_nexthops W1 W2
#            W3 (NEXTHOPS: the nexthop words over up1..up3),
#            testbed_multipath_route [W1 W2 W3] (stock ECMP), dests_add (60
#            more destinations, TB_EXTRA_DSTS), dst_servers PORT (flowgen
#            TCP servers in dst1 and dst2).
# Balancer:  bal CMD.. (runs in the balancer netns), bal_eq_route W1 W2 W3
#            [PREFIX] (equalize route, waits until bal_hash_ready),
#            bal_capacities B1 B2 B3 (configured capacities, checked),
#            bal_strategy NAME (switch and check), bal_need_strategy NAME
#            (switch only if another is set).
# Snapshot:  bal_snap ARRAY: one process in the balancer reads
#            /proc/net/mpbal/stats, /proc/net/mpbal/uplinks and the link
#            counters into the associative array ARRAY: keys "s:NAME",
#            "u:DEV:COLUMN" (none while the module is not loaded), "tx:DEV",
#            "txb:DEV", "rx:DEV" for up1..up3, "rx:DEV", "rxb:DEV" for s1,
#            s2. snap_d A B KEY: B[KEY] - A[KEY]; snap_d3 A B PREFIX
#            [COLUMN]: the three uplinks' deltas "d1 d2 d3" (e.g. tx, or u
#            packets). The one before/after helper of the suites.
# Shaping:   tbf_saturated (every tbf dropping: a flood saturates them),
#            bal_quiesce (every rate estimate back below 100 kbit/s).
# TCP:       tcp_reorder NS: reordering events TCP detected in NS (the
#            TcpExt TCPSACKReorder + TCPTSReorder + TCPRenoReorder sum);
#            tcp_retrans NS: segments it retransmitted (Tcp RetransSegs).
# Routers:   routers_acct_setup: an nft table on testa/testb/testc that
#            counts what arrives from the balancer (iif eth0) per
#            destination (set d) and per TCP 4-tuple (set t);
#            routers_acct_dump: lines "R d DADDR PKTS" and "R t SADDR SPORT
#            DADDR DPORT PKTS", R = 1..3 (router behind up1..up3).
#            routers_drop_udp PORTS: drop the test datagrams on arrival.
# Conntrack: bal_ct_port PORT: "saddr:sport>daddr:dport mark state" per TCP
#            entry to PORT on the balancer; mark_id MARK: the uplink id in
#            it; bal_uplink_ids (ID_DEV[id], DEV_ID[dev]); mark_dev MARK: the
#            uplink a ct mark names; conns_check TAG PORT N WEIGHTS (N TCP
#            connections to PORT: one uplink each, marks, spread: three
#            TEST lines).

# shellcheck source=selftests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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
# The routers behind up1, up2, up3.
TB_ROUTERS=("$NS_TESTA" "$NS_TESTB" "$NS_TESTC")
# dests_add's destinations: 10.0.1.10-39 on dst1, 10.0.2.10-39 on dst2,
# interleaved.
TB_EXTRA_DSTS=()
for ((_i = 10; _i < 40; _i++)); do TB_EXTRA_DSTS+=("10.0.1.$_i" "10.0.2.$_i"); done
unset _i

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
	if [ -z "${_TB_DOWN_SET:-}" ]; then
		_TB_DOWN_SET=1
		at_exit testbed_down
	fi
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
			# shellcheck disable=SC2016,SC2086 # inner bash; one word a device
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

_rates_low()
{
	local dev rate ok=0

	while read -r dev rate; do
		[ "$rate" -lt 100000 ] || ok=1
	done <<<"$(bal mpbalctl -j link show | jq -r '.[] | "\(.dev) \(.rate_bps)"')"
	return $ok
}

# bal_quiesce: wait (bounded) until every uplink's rate estimate is below
# 100 kbit/s.
bal_quiesce()
{
	wait_until 20 _rates_low
}

# tbf_saturated: every uplink's tbf dropped packets since the previous call
# (TBF_DROPS holds the counts; empty it to start over), then 0.5 s pause:
# for wait_until while a flood runs.
TBF_DROPS=()
tbf_saturated()
{
	local d now=() rc=0 i=0

	read -r -a now <<<"$(tc -n "$NS_BAL" -s qdisc show | awk '
		$1 == "qdisc" { dev = $5 }
		/dropped/ { for (i = 1; i < NF; i++) if ($i == "(dropped") { v = $(i + 1); sub(",", "", v); drop[dev] = v } }
		END { print drop["up1"] + 0, drop["up2"] + 0, drop["up3"] + 0 }')"
	for d in "${now[@]}"; do
		[ "$d" -gt "${TBF_DROPS[i]:--1}" ] || rc=1
		i=$((i + 1))
	done
	TBF_DROPS=("${now[@]}")
	sleep 0.5
	return $rc
}

testbed_down()
{
	ns_delete "${TB_NS[@]}"
}

# testbed_shaped_load TAG STRATEGY W1 W2 W3: the setup of the suites that
# measure load: mpbal loaded with STRATEGY, the testbed shaped (--shape),
# the routers dropping UDP to 20000-29999, MTU 9000 (testbed_jumbo), an
# equalize route with weights W1..W3, the estimator sampling every 250 ms
# with bw_ewma_log=2 and the tbf rates configured as capacities (two TEST
# lines, tagged TAG).
TB_SHAPE_BPS=(1000000 10000000 10000000)	# TB_SHAPE_RATES in bit/s
testbed_shaped_load()
{
	local tag=$1

	mpbal_load strategy="$2" || die "insmod $MPBAL_KO failed: $MPBAL_LOAD_ERR"
	testbed_up --shape || die "testbed_up --shape failed"
	routers_drop_udp 20000-29999 || die "nft sink on the routers"
	testbed_jumbo || die "MTU 9000"
	bal_eq_route "$3" "$4" "$5" || die "equalize route"
	bal sysctl -qw net.mpbal.bw_interval_ms=250 net.mpbal.bw_ewma_log=2
	log_test $? "$tag: net.mpbal.bw_interval_ms=250 bw_ewma_log=2"
	bal_capacities "${TB_SHAPE_BPS[@]}"
	log_test $? "$tag: mpbalctl link set capacity 1mbit/10mbit/10mbit: $BAL_CAPS"
}

# testbed_delay D1 D2 D3: netem adds D1, D2, D3 (e.g. 5ms) on the paths
# through testa, testb, testc (the routers' egress towards dst1 and dst2),
# so that the uplinks differ in delay as real ones do: a flow split over
# them per packet arrives out of order. Replies are not delayed. Delays of
# 0 remove the netem.
testbed_delay()
{
	local d=("$1" "$2" "$3") i dev

	for i in 0 1 2; do
		for dev in eth1 eth2; do
			if [ "${d[i]}" = 0 ]; then
				tc -n "${TB_ROUTERS[i]}" qdisc del dev "$dev" root 2>/dev/null
				continue
			fi
			tc -n "${TB_ROUTERS[i]}" qdisc replace dev "$dev" root netem \
				delay "${d[i]}" limit 100000 || return 1
		done
	done
}

# testbed_jumbo [MTU]: MTU 9000 (or MTU) on every link from the sources to
# the routers. A
# TCG guest forwards about a thousand packets a second: big datagrams are
# what can overload 21 Mbit/s of shaped uplinks.
testbed_jumbo()
{
	local ns d mtu=${1:-9000}

	for d in s1 s2 "${TB_UPLINKS[@]}"; do
		ip -n "$NS_BAL" link set "$d" mtu "$mtu" || return 1
	done
	for ns in "$NS_SRCA" "$NS_SRCB" "${TB_ROUTERS[@]}"; do
		ip -n "$ns" link set eth0 mtu "$mtu" || return 1
	done
}

# testbed_nexthops W1 W2 W3: NEXTHOPS = "nexthop via GW dev upN weight WN"
# for up1..up3 (weights default 1), the words of a multipath route.
NEXTHOPS=()
testbed_nexthops()
{
	local w=("${1:-1}" "${2:-1}" "${3:-1}") i

	NEXTHOPS=()
	for i in 0 1 2; do
		NEXTHOPS+=(nexthop via "${TB_GWS[i]}" dev "${TB_UPLINKS[i]}" weight "${w[i]}")
	done
}

# testbed_multipath_route [W1 W2 W3]: the stock (non-equalize) multipath
# route to $DST_NET on the balancer, weights default 1 1 1. Replaces any
# existing route to $DST_NET.
testbed_multipath_route()
{
	testbed_nexthops "$@"
	ip -n "$NS_BAL" route replace "$DST_NET" "${NEXTHOPS[@]}"
}

# dests_add: the 60 addresses of TB_EXTRA_DSTS on the sinks' lo (the
# routers route the /24s already).
dests_add()
{
	local cmds1="" cmds2="" d

	for d in "${TB_EXTRA_DSTS[@]}"; do
		case $d in
		10.0.1.*) cmds1+="addr add $d/32 dev lo"$'\n' ;;
		*) cmds2+="addr add $d/32 dev lo"$'\n' ;;
		esac
	done
	ip -n "$NS_DST1" -batch - <<<"$cmds1" && ip -n "$NS_DST2" -batch - <<<"$cmds2"
}

# dst_servers PORT: a flowgen TCP server on PORT in dst1 and in dst2.
dst_servers()
{
	ip netns exec "$NS_DST1" flowgen tcp-server -p "$1" -D >/dev/null &&
		ip netns exec "$NS_DST2" flowgen tcp-server -p "$1" -D >/dev/null
}

##
## The balancer.
##

bal()
{
	ip netns exec "$NS_BAL" "$@"
}

# bal_hash_ready: mpbal reports the hash policy it needs (managed, or ok).
bal_hash_ready()
{
	local v

	v=$(mpbal_stat "$NS_BAL" hash_policy)
	[ "$v" = managed ] || [ "$v" = ok ]
}

# bal_eq_route W1 W2 W3 [PREFIX]: equalize route over up1..up3 (replacing
# any route to PREFIX, default $DST_NET); waits (bounded) until mpbal
# reports the hash policy it needs.
bal_eq_route()
{
	testbed_nexthops "$1" "$2" "$3"
	bal mpbalctl route replace equalize "${4:-$DST_NET}" "${NEXTHOPS[@]}" || return 1
	wait_until 5 bal_hash_ready
}

# bal_capacities B1 B2 B3: `mpbalctl link set upN capacity` to B1..B3 bit/s
# (whole Mbit/s) and check that they took; BAL_CAPS reads them back.
bal_capacities()
{
	local bps=("$@") want="" i out rc=0

	for i in 0 1 2; do
		out=$(bal mpbalctl link set "up$((i + 1))" capacity "$((bps[i] / 1000000))mbit" 2>&1) ||
			{ rc=1; log_info "mpbalctl: $out"; }
		want+="${want:+ }up$((i + 1))=${bps[i]}(config)"
	done
	BAL_CAPS=$(bal mpbalctl -j link show | jq -r '[.[] | "\(.dev)=\(.capacity_bps)(\(.capacity_src))"] | join(" ")')
	[ "$rc" = 0 ] && [ "$BAL_CAPS" = "$want" ]
}

# bal_strategy NAME: switch the balancer's strategy (and check it took).
bal_strategy()
{
	bal mpbalctl strategy set "$1" || return 1
	[ "$(bal cat "$MPBAL_SYSCTL_DIR/strategy")" = "$1" ]
}

# bal_need_strategy NAME: a test that expects strategy NAME (left by the
# module parameter or an earlier test) switches to it when run otherwise;
# only a failure to switch is logged (as a failure).
bal_need_strategy()
{
	[ "$(mpbal_stat "$NS_BAL" strategy)" = "$1" ] && return 0
	bal_strategy "$1" || log_test 1 "setup: strategy $1 on the balancer"
}

##
## Snapshots of the balancer.
##

# bal_snap ARRAY: see the header (ARRAY becomes a global associative array).
# One netns exec, no other processes.
bal_snap()
{
	declare -gA "$1"
	local -n _snap=$1
	local out tag a b c rest cols=() row i

	# shellcheck disable=SC2016 # expanded by the inner bash
	out=$(bal bash -c '
		# Read each proc file in one go: bash read seeks back after a
		# short read, and a seek makes seq_file regenerate the text, whose
		# counters have moved on meanwhile.
		if [ -e /proc/net/mpbal/stats ]; then
			stats=$(cat /proc/net/mpbal/stats)
			uplinks=$(cat /proc/net/mpbal/uplinks)
			while read -r k v; do echo "s $k $v"; done <<<"$stats"
			{ read -r h; echo "h $h"; while read -r r; do echo "u $r"; done; } <<<"$uplinks"
		fi
		for d in up1 up2 up3; do
			read -r p </sys/class/net/$d/statistics/tx_packets
			read -r b </sys/class/net/$d/statistics/tx_bytes
			read -r r </sys/class/net/$d/statistics/rx_packets
			echo "t $d $p $b $r"
		done
		for d in s1 s2; do
			read -r p </sys/class/net/$d/statistics/rx_packets
			read -r b </sys/class/net/$d/statistics/rx_bytes
			echo "r $d $p $b"
		done') || return 1
	_snap=()
	while read -r tag a b c rest; do
		case $tag in
		s) _snap[s:$a]=$b ;;
		h) read -r -a cols <<<"$a $b $c $rest" ;;
		u)
			read -r -a row <<<"$a $b $c $rest"
			for i in "${!cols[@]}"; do
				_snap[u:${row[0]}:${cols[i]}]=${row[i]}
			done
			;;
		t)
			_snap[tx:$a]=$b
			_snap[txb:$a]=$c
			_snap[rx:$a]=$rest
			;;
		r)
			_snap[rx:$a]=$b
			_snap[rxb:$a]=$c
			;;
		esac
	done <<<"$out"
}

# snap_d A B KEY: B[KEY] - A[KEY] (missing keys count as 0).
snap_d()
{
	local -n _a=$1 _b=$2

	echo $((${_b[$3]:-0} - ${_a[$3]:-0}))
}

# snap_d3 A B PREFIX [COLUMN]: "d1 d2 d3" for PREFIX:upN[:COLUMN], e.g.
# snap_d3 S0 S1 tx, snap_d3 S0 S1 u packets.
snap_d3()
{
	local a=$1 b=$2 p=$3 s=${4:+:$4} out=() d

	for d in "${TB_UPLINKS[@]}"; do
		out+=("$(snap_d "$a" "$b" "$p:$d$s")")
	done
	echo "${out[*]}"
}

##
## TCP counters of a namespace (what nstat reads).
##

# _tcp_field NS FILE PREFIX NAME..: the sum of the NAMEd fields of the
# PREFIX lines of /proc/net/FILE in NS (a header line, then a value line).
_tcp_field()
{
	local ns=$1 file=$2 prefix=$3

	shift 3
	ip netns exec "$ns" cat "/proc/net/$file" | awk -v p="$prefix:" -v want="$*" '
		BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) keep[w[i]] = 1 }
		$1 == p && !h { for (i = 2; i <= NF; i++) name[i] = $i; h = 1; next }
		$1 == p && h { for (i = 2; i <= NF; i++) if (name[i] in keep) s += $i }
		END { print s + 0 }'
}

tcp_reorder()
{
	_tcp_field "$1" netstat TcpExt TCPSACKReorder TCPTSReorder TCPRenoReorder
}

tcp_retrans()
{
	_tcp_field "$1" snmp Tcp RetransSegs
}

##
## The routers: per-router accounting of what the balancer sent (nft
## dynamic sets), and sinks.
##

routers_acct_setup()
{
	local ns

	for ns in "${TB_ROUTERS[@]}"; do
		ip netns exec "$ns" nft -f - <<-'EOF' || return 1
		table ip acct {
			set d {
				type ipv4_addr; flags dynamic; counter; size 65535;
			}
			set t {
				type ipv4_addr . inet_service . ipv4_addr . inet_service
				flags dynamic; counter; size 65535;
			}
			chain c {
				type filter hook forward priority 0; policy accept;
				iifname "eth0" update @d { ip daddr }
				iifname "eth0" meta l4proto tcp update @t { ip saddr . tcp sport . ip daddr . tcp dport }
			}
		}
		EOF
	done
}

# routers_acct_dump: see the header.
routers_acct_dump()
{
	local i

	for i in 1 2 3; do
		ip netns exec "${TB_ROUTERS[i - 1]}" nft -j list table ip acct |
			jq -r --arg r "$i" '.nftables[] | select(.set) | .set |
				.name as $n | (.elem // [])[] | .elem |
				if $n == "d" then "\($r) d \(.val) \(.counter.packets)"
				else "\($r) t \(.val.concat | map(tostring) | join(" ")) \(.counter.packets)"
				end' || return 1
	done
}

# routers_drop_udp PORTS: the routers drop UDP to PORTS (e.g. 20000-29999)
# arriving from the balancer, first thing at PRE_ROUTING (raw priority, no
# conntrack): only the sources and the balancer work for those datagrams.
routers_drop_udp()
{
	local ns

	for ns in "${TB_ROUTERS[@]}"; do
		ip netns exec "$ns" nft -f - <<-EOF || return 1
		table ip sink {
			chain pre {
				type filter hook prerouting priority raw; policy accept;
				iifname "eth0" udp dport $1 drop
			}
		}
		EOF
	done
}

##
## Conntrack marks (the session strategy).
##

# The uplink's id (1 and up, /proc/net/mpbal/uplinks) is stored in the
# ct_mark_mask bits of the mark, at the mask's lowest bit.

# bal_ct_port PORT: "saddr:sport>daddr:dport mark state" of the balancer's
# TCP conntrack entries to PORT (original direction).
bal_ct_port()
{
	bal conntrack -L -p tcp 2>/dev/null |
		awk -v p="$1" '{ s = ""; d = ""; sp = ""; dp = ""; m = 0; st = $4;
			for (i = 1; i <= NF; i++) {
				split($i, kv, "=");
				if (kv[1] == "src" && s == "") s = kv[2];
				else if (kv[1] == "dst" && d == "") d = kv[2];
				else if (kv[1] == "sport" && sp == "") sp = kv[2];
				else if (kv[1] == "dport" && dp == "") dp = kv[2];
				else if (kv[1] == "mark") m = kv[2];
			}
			if (s != "" && dp == p) print s ":" sp ">" d ":" dp, m, st }'
}

# mark_id_of VAR MARK: VAR = the uplink id the mark holds (0 for none).
# Builtins only: a conntrack poll maps every entry's mark, and each fork
# costs ~0.1 s on a TCG guest that is busy forwarding.
mark_id_of()
{
	local _mask _shift=0

	read -r _mask <"$MPBAL_PARAMS/ct_mark_mask"
	_mask=$((_mask))
	while [ $(((_mask >> _shift) & 1)) -eq 0 ] && [ "$_shift" -lt 32 ]; do
		_shift=$((_shift + 1))
	done
	printf -v "$1" '%s' $((($2 & _mask) >> _shift))
}

# mark_id MARK: the uplink id the mark holds (0 for none).
mark_id()
{
	local id

	mark_id_of id "$1"
	echo "$id"
}

# bal_uplink_ids: ID_DEV[id] = "DEV GW" of each uplink of the balancer, and
# DEV_ID[DEV] = the id of the first uplink on DEV.
declare -A ID_DEV=() DEV_ID=()
bal_uplink_ids()
{
	local l cols=() row i d id gw
	local -A c=()

	ID_DEV=()
	DEV_ID=()
	ns_read "$NS_BAL" /proc/net/mpbal/uplinks || return 1
	read -r -a cols <<<"${NS_LINES[0]}"
	for i in "${!cols[@]}"; do c[${cols[i]}]=$i; done
	for l in "${NS_LINES[@]:1}"; do
		read -r -a row <<<"$l"
		d=${row[${c[dev]}]} id=${row[${c[id]}]} gw=${row[${c[gw]}]}
		ID_DEV[$id]="$d $gw"
		[ -n "${DEV_ID[$d]:-}" ] || DEV_ID[$d]=$id
	done
}

# mark_dev_of VAR MARK: VAR = the uplink device (up1..up3) whose id the
# mark holds, or "id N" / "none", without forking (see mark_id_of). Reads
# the uplink ids (bal_uplink_ids) the first time.
mark_dev_of()
{
	local _id

	mark_id_of _id "$2"
	if [ "$_id" -eq 0 ]; then
		printf -v "$1" none
		return
	fi
	[ ${#ID_DEV[@]} -gt 0 ] || bal_uplink_ids
	if [ -n "${ID_DEV[$_id]:-}" ]; then
		printf -v "$1" '%s' "${ID_DEV[$_id]%% *}"
	else
		printf -v "$1" 'id %s' "$_id"
	fi
}

# mark_dev MARK: mark_dev_of, printed.
mark_dev()
{
	local dev

	mark_dev_of dev "$1"
	echo "$dev"
}

# conns_check TAG PORT N WEIGHTS: the N TCP connections to PORT each
# reached exactly one router, the conntrack mark of each names the uplink
# it used, and they were spread by WEIGHTS (+-1): three TEST lines.
conns_check()
{
	local tag=$1 port=$2 n=$3 w=$4 exp

	_conns_per_uplink "$port" "$(bal_ct_port "$port")" ||
		{ log_test 1 "$tag: router accounting readable"; return; }
	log_info "$tag: connections per uplink up1/up2/up3 (routers) ${ST_PER[*]}; conntrack entries to :$port: $ST_NCT"
	[ "$ST_NCONN" -eq "$n" ] && [ "$ST_ONE" -eq "$n" ]
	log_test $? "$tag: each of $ST_NCONN connections (want $n) reached exactly one router ($ST_ONE)" \
		"on several routers (router digits):${ST_BAD:- none}"
	[ "$ST_NCT" -eq "$n" ] && [ "$ST_ONE" -eq "$n" ] && [ -z "$ST_BADMARK" ]
	log_test $? "$tag: conntrack mark of each connection = id of the uplink it used" \
		"mismatches:${ST_BADMARK:- none}"
	exp=$(shares_expect "$w" "$n")
	shares_within "${ST_PER[*]}" "$w" 1
	log_test $? "$tag: connections per uplink ${ST_PER[*]} = ${exp// //} +-1 (weights $w)"
}

# _conns_per_uplink PORT CT_LINES: per TCP connection to PORT, which routers
# saw it (routers_acct_dump) and whether the mark in CT_LINES (from
# bal_ct_port) names that uplink. Sets ST_NCONN (connections seen), ST_ONE
# (seen on exactly one router), ST_PER (per uplink), ST_NCT (conntrack
# entries), ST_BAD (on several routers) and ST_BADMARK (mark names another).
_conns_per_uplink()
{
	local port=$1 out r k m dev
	local -A seen=() ctm=()

	ST_NCONN=0 ST_ONE=0 ST_PER=(0 0 0) ST_NCT=0 ST_BAD="" ST_BADMARK=""
	out=$(routers_acct_dump | awk -v p="$port" '$2 == "t" && $6 == p { print $1, $3 ":" $4 ">" $5 ":" $6 }') ||
		return 1
	while read -r r k; do
		[ -n "$k" ] && seen[$k]+=$r
	done <<<"$out"
	while read -r k m _; do
		[ -n "$k" ] && ctm[$k]=$m
	done <<<"$2"
	ST_NCT=${#ctm[@]}
	for k in "${!seen[@]}"; do
		ST_NCONN=$((ST_NCONN + 1))
		case ${seen[$k]} in
		[123])
			ST_ONE=$((ST_ONE + 1))
			r=${seen[$k]}
			ST_PER[r - 1]=$((ST_PER[r - 1] + 1))
			mark_dev_of dev "${ctm[$k]:-0}"
			[ "$dev" = "up$r" ] || ST_BADMARK+=" $k:up$r/mark=$dev"
			;;
		*) ST_BAD+=" $k:${seen[$k]}" ;;
		esac
	done
}
