#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Forwarding cost through the balancer of the thesis testbed, in one guest
# run. Configurations:
#   stock      stock ECMP (multipath route, no module), hash policy 0
#   stock-l4   the same with hash policy 1 (L4 hash)
#   stock-ct   stock, policy 0, with conntrack active in the balancer (an
#              nft "ct state" rule): the baseline of the session strategy
#   loaded     mpbal loaded, the stock route, no equalize route
#   route..    mpbal with an equalize route and each strategy (the names
#              in net.mpbal.available_strategies)
#   S@STAGE    strategy S with the module loaded with bench_stop=STAGE (a
#              bench build, src/policy/benchstub.rs: the hooks stop after
#              STAGE, one of hooks route query strategy hash counters post)
# Any of them may carry scaling options, "+name=N" (e.g. packet+flows=1024):
#   flows      concurrent flows over both sources (default 1024: 128 ports
#              per source to each of 4 destinations)
#   dests      destinations, 4 or 64 (default 4)
#   nexthops   nexthops of the traffic's route (default 3, one per uplink):
#              more go through further gateways of the three routers
#              (172.20.R.3 and up), in uplink order; above 16 mpbal leaves
#              the route to stock ECMP (counted as unsupported)
#   routes     equalize (or, for stock, multipath) routes in the balancer,
#              the traffic's and N-1 others (default 1)
# Each figure is packets forwarded per second (sum of the uplinks' tx
# deltas over the senders' own send time, in guest time), the median of
# ROUNDS rounds run interleaved so drifts in host load hit every
# configuration alike. The routers drop the test packets at PRE_ROUTING
# (raw table) so the work measured is the sources' and the balancer's.
#
# Under QEMU -icount (one vCPU; run.sh --icount) guest time is executed
# instructions, so 1e9 / rate is the instructions the whole guest spends
# per forwarded packet; both senders then share CPU 0.
#
# Usage: bench.sh [ROUNDS [PACKETS [CONFIGS [EXTRAS]]]] (packets per source
# per measurement; CONFIGS a space-separated subset, stock always included;
# default: the baselines, loaded and every strategy; EXTRAS a space-separated
# list of the words below). "memory" adds lines
#   MEM: <what> <memory_* lines of /proc/net/mpbal/stats> conntrack <N>
# for an idle netns, a balancing one, and the same after 1024 connections.
# "ksyms" prints the module's /proc/kallsyms lines as "KSYM: <line>" after
# each configuration's setup that has it loaded (for make bench's profile
# part, which maps the guest's executed code to symbols).
# Prints per configuration:
#   BENCH: <name> <pps> <seconds> <route_lookups> <packets_fwd> (rounds: ..)
# with the shortest measurement's guest seconds, and mpbal's route lookups
# and forwarded packets of the last round (0 0 without the module).
cd "$(dirname "$0")" || exit 1
# shellcheck source=selftests/testbed.sh
. ./testbed.sh

ROUNDS=${1:-7}
PACKETS=${2:-150000}
CONFIGS=(stock)
if [ -n "${3:-}" ]; then
	read -r -a CONFIGS <<<"stock $3"
else
	mpbal_load || die "insmod: $MPBAL_LOAD_ERR"
	mpbal_strategies || die "no net.mpbal.available_strategies"
	mpbal_unload || die "rmmod"
	CONFIGS+=(stock-l4 stock-ct loaded "${MPBAL_STRATEGIES[@]}")
fi

testbed_up --no-offload
dests_add || die "destinations"
routers_drop_udp 20000-60000 || die "nft on the routers"
# 64k flows through conntrack (stock-ct, session) must all fit.
sysctl -qw net.netfilter.nf_conntrack_max=262144 2>/dev/null
sysctl -qw net.netfilter.nf_conntrack_buckets=65536 2>/dev/null

STAGES=(hooks route query strategy hash counters post)
EXTRAS=" ${4:-} "

# ksyms: with the extra "ksyms", the loaded module's symbols.
ksyms()
{
	[[ $EXTRAS == *" ksyms "* ]] || return 0
	mpbal_loaded || return 0
	grep '\[mpbal\]' /proc/kallsyms | sed 's/^/KSYM: /'
}

policy_is() { [ "$(ns_sysctl_get "$NS_BAL" net.ipv4.fib_multipath_hash_policy)" = "$1" ]; }

# conntrack_rule on|off: an nft rule that makes the balancer track every
# forwarded packet (what a stateful firewall or NAT does anyway).
conntrack_rule()
{
	bal nft delete table ip ctbench 2>/dev/null
	[ "$1" = on ] || return 0
	bal nft -f - <<-'EOF'
	table ip ctbench {
		chain forward {
			type filter hook forward priority filter; policy accept;
			ct state established,new accept
		}
	}
	EOF
}

# bench_nexthops N: NEXTHOPS for a route of N nexthops, in turn over the
# three uplinks, through gateways .2, .3, ... of each router (added on the
# routers' eth0 as needed; GW_TOP[r]: the highest one router r has).
GW_TOP=(2 2 2)
bench_nexthops()
{
	local i r host

	NEXTHOPS=()
	for ((i = 0; i < $1; i++)); do
		r=$((i % 3)) host=$((2 + i / 3))
		if [ "$host" -gt "${GW_TOP[r]}" ]; then
			ip -n "${TB_ROUTERS[r]}" addr add "${TB_GWS[r]%.*}.$host/24" dev eth0 ||
				return 1
			GW_TOP[r]=$host
		fi
		NEXTHOPS+=(nexthop via "${TB_GWS[r]%.*}.$host" dev "${TB_UPLINKS[r]}" weight 1)
	done
}

stock() { # stock POLICY CONNTRACK
	mpbal_loaded && { mpbal_unload || die "rmmod"; }
	ns_sysctl "$NS_BAL" net.ipv4.fib_multipath_hash_policy="$1"
	conntrack_rule "$2" || die "nft ct rule"
	bench_nexthops "$NNH" || die "gateways"
	ip -n "$NS_BAL" route replace "$DST_NET" "${NEXTHOPS[@]}" || die "route"
}

# extra_routes N KIND: N more routes (10.128.X.0/24) besides the traffic's,
# equalize or stock multipath; removes those of an earlier configuration.
EXTRA_ROUTES=0
extra_routes()
{
	local i cmds=""

	for ((i = 0; i < EXTRA_ROUTES; i++)); do
		cmds+="route del 10.128.$i.0/24"$'\n'
	done
	[ -z "$cmds" ] || ip -n "$NS_BAL" -batch - <<<"$cmds" >/dev/null 2>&1
	EXTRA_ROUTES=$1
	testbed_nexthops 1 1 1
	for ((i = 0; i < $1; i++)); do
		if [ "$2" = equalize ]; then
			bal mpbalctl route add equalize "10.128.$i.0/24" "${NEXTHOPS[@]}" >/dev/null ||
				return 1
		else
			ip -n "$NS_BAL" route add "10.128.$i.0/24" "${NEXTHOPS[@]}" || return 1
		fi
	done
}

# The scaling options of a configuration: FLOWS, NDESTS, NROUTES, NNH.
options() {
	local o
	FLOWS=1024 NDESTS=4 NROUTES=1 NNH=3
	IFS=+ read -r -a o <<<"${1#*+}"
	[[ $1 == *+* ]] || o=()
	for o in "${o[@]}"; do
		case $o in
		flows=[1-9]*) FLOWS=${o#flows=} ;;
		dests=4 | dests=64) NDESTS=${o#dests=} ;;
		routes=[1-9]*) NROUTES=${o#routes=} ;;
		nexthops=[1-9]*) NNH=${o#nexthops=} ;;
		*) die "unknown option $o" ;;
		esac
	done
}

setup() { # setup CONFIG
	options "$1"
	extra_routes 0 || die "routes"
	set -- "${1%%+*}"
	case $1 in
	stock) stock 0 off ;;
	stock-l4) stock 1 off ;;
	stock-ct) stock 0 on ;;
	loaded)
		conntrack_rule off
		ns_sysctl "$NS_BAL" net.ipv4.fib_multipath_hash_policy=0
		mpbal_loaded || mpbal_load || die "insmod: $MPBAL_LOAD_ERR"
		bench_nexthops "$NNH" || die "gateways"
		ip -n "$NS_BAL" route replace "$DST_NET" "${NEXTHOPS[@]}" || die "route"
		;;
	*)
		conntrack_rule off
		local stage=0 have i args=()
		if [[ $1 == *@* ]]; then
			for i in "${!STAGES[@]}"; do
				[ "${STAGES[i]}" = "${1#*@}" ] && stage=$((i + 1))
			done
			[ "$stage" -gt 0 ] || die "unknown stage in $1"
			args=(bench_stop=$stage)
		fi
		# A bench build is reloaded when the stage changes.
		have=$(cat /sys/module/mpbal/parameters/bench_stop 2>/dev/null || echo 0)
		mpbal_loaded && [ "$have" != "$stage" ] && { mpbal_unload || die "rmmod"; }
		mpbal_loaded || mpbal_load "${args[@]}" || die "insmod ${args[*]}: $MPBAL_LOAD_ERR"
		bench_nexthops "$NNH" || die "gateways"
		bal mpbalctl route replace equalize "$DST_NET" "${NEXTHOPS[@]}" || die "route"
		bal mpbalctl strategy set "${1%@*}" || die "strategy"
		# The worker sets the hash policy (and conntrack for session),
		# unless the route has more nexthops than mpbal steers.
		[ "$NNH" -gt 16 ] || wait_until 5 policy_is 1 || die "hash policy not managed"
		;;
	esac
	case $1 in
	stock* | loaded) extra_routes $((NROUTES - 1)) multipath || die "routes" ;;
	*) extra_routes $((NROUTES - 1)) equalize || die "routes" ;;
	esac
	ksyms
	sleep 0.5
}

# One sender per vCPU, always the same: placement must not differ between
# configurations. With one vCPU (icount) both share it.
CPU_A=0 CPU_B=1
[ "$(nproc)" -gt 1 ] || CPU_B=0

# measure: prints "PPS SECONDS LOOKUPS FORWARDED" for one measurement, with
# FLOWS flows over NDESTS destinations (each source its own port range).
measure() {
	local tx fa fb sa sb secs dsts ports
	dsts=$DST_ALL
	[ "$NDESTS" = 64 ] && dsts+=$(printf ',%s' "${TB_EXTRA_DSTS[@]}")
	ports=$((FLOWS / 2 / NDESTS))
	[ "$ports" -ge 1 ] || ports=1
	bal_snap S0
	fa=$(mktemp) fb=$(mktemp)
	ip netns exec "$NS_SRCA" taskset -c $CPU_A flowgen udp -d "$dsts" -p 20000-$((20000 + ports - 1)) \
		-n "$PACKETS" -s 64 >"$fa" &
	ip netns exec "$NS_SRCB" taskset -c $CPU_B flowgen udp -d "$dsts" -p 40000-$((40000 + ports - 1)) \
		-n "$PACKETS" -s 64 >"$fb" &
	wait
	bal_snap S1
	tx=$(snap_d3 S0 S1 tx)
	sa=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$fa")
	sb=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$fb")
	rm -f "$fa" "$fb"
	secs=$(echo "$sa $sb" | awk '{print ($1 > $2) ? $1 : $2}')
	# shellcheck disable=SC2086 # three numbers
	awk -v n="$(sum $tx)" -v s="$secs" -v l="$(snap_d S0 S1 s:route_lookups)" \
		-v f="$(snap_d S0 S1 s:packets_fwd)" \
		'BEGIN {printf "%d %.6f %d %d\n", (s > 0) ? n / s : 0, s, l, f}'
}

declare -A rates secs lookups
for ((r = 1; r <= ROUNDS; r++)); do
	for c in "${CONFIGS[@]}"; do
		setup "$c"
		read -r pps s l f < <(measure)
		rates[$c]+="$pps "
		secs[$c]+="$s "
		lookups[$c]="$l $f"
		log_info "round $r $c: $pps pps in $s s (route lookups $l of $f forwarded)"
	done
done
# memory WHAT: the balancer's memory lines and conntrack entries.
memory() {
	local l out="MEM: $1"
	ns_read "$NS_BAL" /proc/net/mpbal/stats || die "stats"
	for l in "${NS_LINES[@]}"; do
		[[ $l == memory_* ]] && out+=" $l"
	done
	echo "$out conntrack $(bal conntrack -C 2>/dev/null || echo 0)"
}
if [[ $EXTRAS == *" memory "* ]]; then
	mpbal_loaded && mpbal_unload
	setup loaded
	bal conntrack -F >/dev/null 2>&1
	memory idle
	setup session
	memory active
	setup session+flows=1024
	measure >/dev/null
	memory "after 1024 connections"
fi
mpbal_loaded && mpbal_unload

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for c in "${CONFIGS[@]}"; do
	m=$(echo "${rates[$c]}" | median)
	s=$(echo "${secs[$c]}" | tr ' ' '\n' | grep . | sort -n | head -n1)
	echo "BENCH: $c $m $s ${lookups[$c]} (rounds: ${rates[$c]% })"
done
testbed_down
