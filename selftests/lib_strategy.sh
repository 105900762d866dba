# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers for the strategy tests (mpbal_strategy_packet.sh, mpbal_strategy_route.sh,
# mpbal_strategy_session.sh, mpbal_strategy_bandwidth.sh, mpbal_stock.sh, mpbal_local.sh,
# mpbal_switch.sh). Source after lib.sh and testbed.sh:
#
#   . "$here/lib.sh"; . "$here/testbed.sh"; . "$here/lib_strategy.sh"
#
# Module:    st_load [PARAM=VALUE..] (insmod, rmmod registered on exit),
#            st_unload, st_up [testbed_up opts] (testbed, torn down on exit
#            before the module is unloaded).
# Balancer:  st_bal CMD.. (runs in the balancer netns), st_eq_route W1 W2 W3
#            [PREFIX] (equalize route, waits until the hash policy is
#            ready), st_strategy NAME, st_ifindex DEV.
# Snapshots: st_snap ARRAY: one process in the balancer reads
#            /proc/net/mpbal/stats, /proc/net/mpbal/uplinks and the uplink
#            counters into the associative array ARRAY (keys "s:NAME",
#            "u:DEV:COLUMN", "tx:DEV", "txb:DEV", "rx:DEV" for up1..up3,
#            "rx:DEV", "rxb:DEV" for s1, s2; no "s:" and "u:" keys while the
#            module is not loaded).
#            st_d A B KEY: B[KEY] - A[KEY]; st_d3 A B PREFIX: the three
#            uplinks' deltas "d1 d2 d3" of PREFIX ("tx", "u" + column...).
# Routers:   st_acct_setup: an nft table on testa/testb/testc that counts
#            what arrives from the balancer (iif eth0) per destination (set
#            d) and per TCP 4-tuple (set t). st_acct_dump: lines
#            "R d DADDR PKTS" and "R t SADDR SPORT DADDR DPORT PKTS", R = 1..3
#            (router behind up1..up3).
# Conntrack: st_ct_tcp [NS]: "SADDR SPORT DADDR DPORT MARK STATE" per TCP
#            entry (original direction), default the balancer.
# Traffic:   st_bg VAR TIMEOUT NS CMD..: background job, output in
#            $ST_TMP/VAR.out, pid in VAR; st_wait VAR: its exit status.
#            st_flowgen_sent FILE: the sent= figure of a flowgen udp line.
# Checks:    st_within_pct "C1 C2 C3" "W1 W2 W3" PCT: every count within PCT
#            percent of the total of its weighted share.
#            st_within_abs "C1 C2 C3" "W1 W2 W3" N: within +-N of its share.
#            st_sum V..: sum.

[ -n "${MPBAL_LIB_STRATEGY_SH:-}" ] && return 0
MPBAL_LIB_STRATEGY_SH=1

ST_KO=${MPBAL_MODULE:-/mpbal/mpbal.ko}
ST_ROUTERS=("$NS_TESTA" "$NS_TESTB" "$NS_TESTC")
ST_TMP=$(mktemp -d /tmp/mpbal-st.XXXXXX)
at_exit rm -rf "$ST_TMP"

##
## Module and testbed.
##

_st_unload_if_loaded()
{
	grep -q '^mpbal ' /proc/modules && rmmod mpbal
	return 0
}

# st_load [PARAM=VALUE..]: insmod the module under test; it is unloaded on
# exit (after the testbed is gone).
st_load()
{
	insmod "$ST_KO" "$@" || return 1
	if [ -z "${_ST_UNLOAD_SET:-}" ]; then
		_ST_UNLOAD_SET=1
		at_exit _st_unload_if_loaded
	fi
}

st_unload()
{
	rmmod mpbal
}

# st_up [--shape] [--no-offload]: the thesis testbed, deleted on exit.
st_up()
{
	testbed_up "$@" || return 1
	at_exit testbed_down
}

st_bal()
{
	ip netns exec "$NS_BAL" "$@"
}

# st_stat NAME: one value of the balancer's /proc/net/mpbal/stats.
st_stat()
{
	st_bal awk -v k="$1" '$1 == k { print $2 }' /proc/net/mpbal/stats
}

_st_hash_ready()
{
	local v

	v=$(st_stat hash_policy)
	[ "$v" = managed ] || [ "$v" = ok ]
}

# st_eq_route W1 W2 W3 [PREFIX]: equalize route over up1..up3 (replacing
# any route to PREFIX, default $DST_NET); waits (bounded) until mpbal
# reports the hash policy it needs.
st_eq_route()
{
	local prefix=${4:-$DST_NET}

	st_bal mpbalctl route replace equalize "$prefix" \
		nexthop via "$UP1_GW" dev "$UP1" weight "$1" \
		nexthop via "$UP2_GW" dev "$UP2" weight "$2" \
		nexthop via "$UP3_GW" dev "$UP3" weight "$3" || return 1
	wait_until 5 _st_hash_ready
}

# st_strategy NAME: switch the balancer's strategy (and check it took).
st_strategy()
{
	st_bal mpbalctl strategy set "$1" || return 1
	[ "$(st_bal cat /proc/sys/net/mpbal/strategy)" = "$1" ]
}

st_ifindex()
{
	st_bal cat "/sys/class/net/$1/ifindex"
}

##
## Snapshots of the balancer.
##

# st_snap ARRAY: see the header (ARRAY becomes a global associative array).
# One netns exec, no other processes.
st_snap()
{
	declare -gA "$1"
	local -n _snap=$1
	local out tag a b c rest cols=() row i

	# shellcheck disable=SC2016 # expanded by the inner bash
	out=$(st_bal bash -c '
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

# st_d A B KEY: B[KEY] - A[KEY] (missing keys count as 0).
st_d()
{
	local -n _a=$1 _b=$2

	echo $((${_b[$3]:-0} - ${_a[$3]:-0}))
}

# st_d3 A B PREFIX [SUFFIX]: "d1 d2 d3" for PREFIX:upN[:SUFFIX], e.g.
# st_d3 S0 S1 tx, st_d3 S0 S1 u packets.
st_d3()
{
	local a=$1 b=$2 p=$3 s=${4:+:$4} out=() d

	for d in up1 up2 up3; do
		out+=("$(st_d "$a" "$b" "$p:$d$s")")
	done
	echo "${out[*]}"
}

##
## Per-router accounting of what the balancer sent (nft dynamic sets).
##

st_acct_setup()
{
	local ns

	for ns in "${ST_ROUTERS[@]}"; do
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

# st_acct_dump: see the header.
st_acct_dump()
{
	local i

	for i in 1 2 3; do
		ip netns exec "${ST_ROUTERS[i - 1]}" nft -j list table ip acct |
			jq -r --arg r "$i" '.nftables[] | select(.set) | .set |
				.name as $n | (.elem // [])[] | .elem |
				if $n == "d" then "\($r) d \(.val) \(.counter.packets)"
				else "\($r) t \(.val.concat | map(tostring) | join(" ")) \(.counter.packets)"
				end' || return 1
	done
}

##
## Conntrack.
##

# st_ct_tcp [NS]: "SADDR SPORT DADDR DPORT MARK STATE" per TCP connection.
st_ct_tcp()
{
	ip netns exec "${1:-$NS_BAL}" conntrack -L -p tcp 2>/dev/null |
		awk '{ s = ""; d = ""; sp = ""; dp = ""; m = 0; st = $4;
			for (i = 1; i <= NF; i++) {
				split($i, kv, "=");
				if (kv[1] == "src" && s == "") s = kv[2];
				else if (kv[1] == "dst" && d == "") d = kv[2];
				else if (kv[1] == "sport" && sp == "") sp = kv[2];
				else if (kv[1] == "dport" && dp == "") dp = kv[2];
				else if (kv[1] == "mark") m = kv[2];
			}
			if (s != "") print s, sp, d, dp, m, st }'
}

##
## Background traffic.
##

# st_bg VAR TIMEOUT_S NS CMD..: CMD in NS in the background (killed after
# TIMEOUT_S), output in $ST_TMP/VAR.out; VAR is set to the pid.
st_bg()
{
	local var=$1 t=$2 ns=$3

	shift 3
	timeout "$t" ip netns exec "$ns" "$@" >"$ST_TMP/$var.out" 2>&1 &
	printf -v "$var" '%s' $!
}

# st_wait VAR: exit status of the job started with st_bg VAR.
st_wait()
{
	local pid=${!1}

	wait "$pid"
}

st_out()
{
	cat "$ST_TMP/$1.out" 2>/dev/null
}

# st_flowgen_sent TEXT: the sent= (udp) or ok= (tcp) figure, 0 if none.
st_flowgen_sent()
{
	if [[ $1 =~ sent=([0-9]+) ]] || [[ $1 =~ ok=([0-9]+) ]]; then
		echo "${BASH_REMATCH[1]}"
	else
		echo 0
	fi
}

##
## Checks.
##

st_sum()
{
	local s=0 x

	for x in "$@"; do s=$((s + x)); done
	echo "$s"
}

# _st_dev C W SC SW: |C*SW - SC*W|, the deviation of C from SC*W/SW, times SW.
_st_dev()
{
	local x=$(($1 * $4 - $3 * $2))

	echo $((x < 0 ? -x : x))
}

# st_within_pct "C.." "W.." PCT: |Ci - T*Wi/W| <= T*PCT/100 for every i
# (T = sum of C, W = sum of weights); T must be > 0.
st_within_pct()
{
	local c w sc sw i

	read -r -a c <<<"$1"
	read -r -a w <<<"$2"
	sc=$(st_sum "${c[@]}")
	sw=$(st_sum "${w[@]}")
	[ "$sc" -gt 0 ] || return 1
	for i in "${!c[@]}"; do
		[ $(($(_st_dev "${c[i]}" "${w[i]}" "$sc" "$sw") * 100)) -le \
			$((sc * $3 * sw)) ] || return 1
	done
}

# st_within_abs "C.." "W.." N: |Ci - T*Wi/W| <= N for every i.
st_within_abs()
{
	local c w sc sw i

	read -r -a c <<<"$1"
	read -r -a w <<<"$2"
	sc=$(st_sum "${c[@]}")
	sw=$(st_sum "${w[@]}")
	[ "$sc" -gt 0 ] || return 1
	for i in "${!c[@]}"; do
		[ "$(_st_dev "${c[i]}" "${w[i]}" "$sc" "$sw")" -le $(($3 * sw)) ] || return 1
	done
}

# st_expect "W.." T: the exact shares of T, "e1 e2 e3" (rounded down).
st_expect()
{
	local w sw x out=()

	read -r -a w <<<"$1"
	sw=$(st_sum "${w[@]}")
	for x in "${w[@]}"; do out+=($(($2 * x / sw))); done
	echo "${out[*]}"
}

# st_add_dests: 30 more /32 destinations on each sink's lo, 10.0.1.10-39
# and 10.0.2.10-39 (the routers route the /24s already).
st_add_dests()
{
	local cmds1="" cmds2="" i

	for i in $(seq 10 39); do
		cmds1+="addr add 10.0.1.$i/32 dev lo"$'\n'
		cmds2+="addr add 10.0.2.$i/32 dev lo"$'\n'
	done
	ip -n "$NS_DST1" -batch - <<<"$cmds1" && ip -n "$NS_DST2" -batch - <<<"$cmds2"
}

# st_ct_port PORT: "saddr:sport>daddr:dport mark state" of the balancer's
# TCP conntrack entries to PORT.
st_ct_port()
{
	st_ct_tcp | awk -v p="$1" '$4 == p { print $1 ":" $2 ">" $3 ":" $4, $5, $6 }'
}

# st_mark_dev MARK: the uplink (up1..up3) whose ifindex the mark holds (the
# caller's IFX map and MARK_SHIFT), or "ifindex N" / "none".
st_mark_dev()
{
	local ifi=$(($1 >> MARK_SHIFT)) d

	[ "$ifi" -eq 0 ] && { echo none; return; }
	for d in up1 up2 up3; do
		[ "${IFX[$d]}" = "$ifi" ] && { echo "$d"; return; }
	done
	echo "ifindex $ifi"
}

# st_conns_per_uplink PORT CT_LINES: per TCP connection to PORT, which
# routers saw it (st_acct_dump) and whether the mark in CT_LINES (from
# st_ct_port) names that uplink. Sets ST_NCONN (connections seen),
# ST_ONE (seen on exactly one router), ST_PER (per uplink), ST_NCT (conntrack
# entries), ST_BAD (on several routers) and ST_BADMARK (mark names another).
st_conns_per_uplink()
{
	local port=$1 out r k m
	local -A seen=() ctm=()

	ST_NCONN=0 ST_ONE=0 ST_PER=(0 0 0) ST_NCT=0 ST_BAD="" ST_BADMARK=""
	out=$(st_acct_dump | awk -v p="$port" '$2 == "t" && $6 == p { print $1, $3 ":" $4 ">" $5 ":" $6 }') ||
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
			[ "$(st_mark_dev "${ctm[$k]:-0}")" = "up$r" ] ||
				ST_BADMARK+=" $k:up$r/mark=$(st_mark_dev "${ctm[$k]:-0}")"
			;;
		*) ST_BAD+=" $k:${seen[$k]}" ;;
		esac
	done
}
