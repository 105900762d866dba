#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The route strategy on the thesis testbed: per destination. The sinks get
# 60 destination addresses (30 on dst1, 30 on dst2); both sources send to
# every one of them over many ports. The routers count, per destination,
# what reached them from the balancer (nft dynamic set), so the tests see
# which uplink each destination used:
#  - every destination used exactly one uplink;
#  - new destinations are spread by weight (1:2:3 -> 10/20/30, +-1);
#  - a destination keeps its uplink on later traffic;
#  - after net.mpbal.route_idle_timeout an idle destination is placed again;
#  - dest_entries never exceeds dest_capacity, also with a table (16
#    entries, route_table_size=16) smaller than the set of destinations.
# Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- /selftests/mpbal_strategy_route.sh
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=selftests/lib.sh
. "$here/lib.sh"
# shellcheck source=selftests/testbed.sh
. "$here/testbed.sh"
# shellcheck source=selftests/lib_strategy.sh
. "$here/lib_strategy.sh"

require_cmd ip nft jq flowgen mpbalctl insmod rmmod timeout

WEIGHTS="1 2 3"
# 60 destinations: 10.0.1.10-39 on dst1, 10.0.2.10-39 on dst2.
DESTS=()
for i in $(seq 10 39); do DESTS+=("10.0.1.$i" "10.0.2.$i"); done
NDEST=${#DESTS[@]}
DEST_LIST=$(IFS=,; echo "${DESTS[*]}")
PORTS=10	# ports per destination and source in a round

# Largest dest_entries seen and the capacity reported with it.
MAX_ENTRIES=0
CAPACITY=""

snap_track()
{
	st_snap "$1" || return 1
	local -n _s=$1
	[ "${_s[s:dest_entries]:-0}" -gt "$MAX_ENTRIES" ] && MAX_ENTRIES=${_s[s:dest_entries]}
	[ -n "$CAPACITY" ] || CAPACITY=${_s[s:dest_capacity]:-}
	[ -n "${_s[s:dest_capacity]:-}" ] && [ "${_s[s:dest_capacity]}" != "$CAPACITY" ] &&
		log_info "dest_capacity changed: $CAPACITY -> ${_s[s:dest_capacity]}"
	return 0
}

# round PORT_BASE: srcA and srcB each send one datagram per (destination,
# port) for PORTS ports, at the same time. Sets ROUND_SENT.
round()
{
	local base=$1 ra rb a b n=$((NDEST * PORTS))

	st_bg A 60 "$NS_SRCA" flowgen udp -d "$DEST_LIST" -p "$base-$((base + PORTS - 1))" -n $n -s 32
	st_bg B 60 "$NS_SRCB" flowgen udp -d "$DEST_LIST" -p "$((base + 100))-$((base + 100 + PORTS - 1))" -n $n -s 32
	st_wait A; ra=$?
	st_wait B; rb=$?
	a=$(st_flowgen_sent "$(st_out A)")
	b=$(st_flowgen_sent "$(st_out B)")
	ROUND_SENT=$((a + b))
	[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ] && [ "$ROUND_SENT" -eq $((2 * n)) ] || {
		log_info "flowgen: $(st_out A) / $(st_out B)"
		return 1
	}
}

# acct_read ARRAY: ARRAY[R:DADDR] = packets router R (1..3) got for DADDR.
acct_read()
{
	declare -gA "$1"
	local -n _acc=$1
	local r t a p out

	out=$(st_acct_dump) || return 1
	_acc=()
	while read -r r t a p; do
		[ "$t" = d ] && _acc[$r:$a]=$p
	done <<<"$out"
}

# placement A B: for every destination, the routers whose count grew from
# A to B. Sets PLACE[DADDR] (e.g. "2", "" or "13"), PER_ROUTER "n1 n2 n3"
# (destinations placed on exactly one router, by router), MULTI (list of
# destinations on several routers) and NONE (on no router), GROWTH[DADDR]
# (packets on the router it used, or total if several).
placement()
{
	local -n _pa=$1 _pb=$2
	local d r g n=(0 0 0)

	declare -gA PLACE=() GROWTH=()
	MULTI="" NONE=""
	for d in "${DESTS[@]}"; do
		PLACE[$d]=""
		GROWTH[$d]=0
		for r in 1 2 3; do
			g=$((${_pb[$r:$d]:-0} - ${_pa[$r:$d]:-0}))
			if [ "$g" -gt 0 ]; then
				PLACE[$d]+=$r
				GROWTH[$d]=$((GROWTH[$d] + g))
			fi
		done
		case ${PLACE[$d]} in
		"") NONE+=" $d" ;;
		[123]) r=${PLACE[$d]}; n[r - 1]=$((n[r - 1] + 1)) ;;
		*) MULTI+=" $d:${PLACE[$d]}" ;;
		esac
	done
	PER_ROUTER="${n[*]}"
}

st_load strategy=route || die "insmod $ST_KO failed"
st_up || die "testbed_up failed"
st_add_dests || die "adding the destination addresses failed"
st_acct_setup || die "nft accounting on the routers failed"
# shellcheck disable=SC2086
st_eq_route $WEIGHTS || die "equalize route"
st_bal sysctl -qw net.mpbal.route_idle_timeout=60 || die "route_idle_timeout"
[ "$(st_stat strategy)" = route ]
log_test $? "route: strategy=route from the module parameter"

# 1. First round: each destination takes one uplink, by weight.
acct_read C0
snap_track S0
round 8000
log_test $? "route: round 1, $ROUND_SENT datagrams to $NDEST destinations x $PORTS ports from srcA and srcB"
snap_track S1
acct_read C1 || die "router accounting unreadable"
placement C0 C1
log_info "round 1: destinations per uplink up1/up2/up3: $PER_ROUTER; new_choices +$(st_d S0 S1 s:new_choices) remembered +$(st_d S0 S1 s:remembered) dest_entries ${S1[s:dest_entries]}"
[ -z "$MULTI" ] && [ -z "$NONE" ]
log_test $? "route: each of $NDEST destinations used exactly one uplink" \
	"on several uplinks:${MULTI:- none}; on none:${NONE:- none}"
declare -A FIRST=()
for d in "${DESTS[@]}"; do FIRST[$d]=${PLACE[$d]}; done

st_within_abs "$PER_ROUTER" "$WEIGHTS" 1
log_test $? "route: destinations per uplink $PER_ROUTER = 10/20/30 +-1 (weights $WEIGHTS)"

# 2. Second round, new ports: every destination stays where it was and gets
# all of its packets there.
round 8020
log_test $? "route: round 2, $ROUND_SENT datagrams to the same destinations"
snap_track S2
acct_read C2 || die "router accounting unreadable"
placement C1 C2
moved="" short=""
for d in "${DESTS[@]}"; do
	[ "${PLACE[$d]}" = "${FIRST[$d]}" ] || moved+=" $d:${FIRST[$d]}->${PLACE[$d]}"
	[ "${GROWTH[$d]}" -eq $((2 * PORTS)) ] || short+=" $d:${GROWTH[$d]}"
done
log_info "round 2: destinations per uplink $PER_ROUTER; new_choices +$(st_d S1 S2 s:new_choices) remembered +$(st_d S1 S2 s:remembered)"
[ -z "$moved" ] && [ -z "$short" ]
log_test $? "route: every destination kept its uplink on later traffic" \
	"moved:${moved:- none}; packet count not $((2 * PORTS)) on its uplink:${short:- none}"

# 3. Idle timeout: with route_idle_timeout=2 the idle table empties, and
# the next packet to each destination places it again (a new choice).
st_bal sysctl -qw net.mpbal.route_idle_timeout=2
log_test $? "route: set net.mpbal.route_idle_timeout=2"
t0=$(now_ms)
wait_until 8 eval '[ "$(st_stat dest_entries)" = 0 ]'
rc=$?
log_test $rc "route: the destination table expires when idle (dest_entries 0 after $(($(now_ms) - t0)) ms)"
snap_track S3
acct_read C3 || die "router accounting unreadable"
out=$(ip netns exec "$NS_SRCA" flowgen udp -d "$DEST_LIST" -p 9000 -n "$NDEST" -s 32)
rc=$?
snap_track S4
acct_read C4 || die "router accounting unreadable"
placement C3 C4
nc=$(st_d S3 S4 s:new_choices)
re=$(st_d S3 S4 s:remembered)
log_info "after expiry: $out; new_choices +$nc remembered +$re; destinations per uplink $PER_ROUTER; dest_entries ${S4[s:dest_entries]}"
same=0
for d in "${DESTS[@]}"; do [ "${PLACE[$d]}" = "${FIRST[$d]}" ] && same=$((same + 1)); done
log_info "after expiry: $same of $NDEST destinations got their old uplink again"
[ "$rc" -eq 0 ] && [ "$nc" -eq "$NDEST" ] && [ "$re" -eq 0 ] && [ -z "$MULTI" ] && [ -z "$NONE" ]
log_test $? "route: after the idle timeout each destination was placed again ($nc new choices of $NDEST)"
st_within_abs "$PER_ROUTER" "$WEIGHTS" 1
log_test $? "route: placed again by weight: $PER_ROUTER = 10/20/30 +-1"

[ -n "$CAPACITY" ] && [ "$MAX_ENTRIES" -le "$CAPACITY" ] && [ "$MAX_ENTRIES" -ge "$NDEST" ]
log_test $? "route: dest_entries (max $MAX_ENTRIES, $NDEST destinations) <= dest_capacity $CAPACITY"

# 4. A table smaller than the set of destinations: reload with
# route_table_size=16 (the equalize route stays in the FIB). Entries are
# evicted, never more than the capacity; traffic still flows.
st_unload
log_test $? "route: rmmod with the testbed up"
st_load strategy=route route_table_size=16
log_test $? "route: insmod route_table_size=16"
wait_until 5 _st_hash_ready
log_test $? "route: the equalize route is picked up again ($(st_stat equalize_routes) route, hash policy $(st_stat hash_policy))"
MAX_ENTRIES=0 CAPACITY=""
snap_track S5
round 8040
rc=$?
snap_track S6
tx=$(st_d3 S5 S6 tx)
# shellcheck disable=SC2086
total=$(st_sum $tx)
log_info "small table: dest_entries ${S6[s:dest_entries]} of ${S6[s:dest_capacity]}; new_choices +$(st_d S5 S6 s:new_choices) remembered +$(st_d S5 S6 s:remembered); link tx $tx"
[ "$rc" -eq 0 ] && [ "$total" -eq "$ROUND_SENT" ]
log_test $? "route: with a 16-entry table all $ROUND_SENT datagrams to $NDEST destinations forwarded ($total)"
[ "$CAPACITY" = 16 ] && [ "$MAX_ENTRIES" -le 16 ] && [ "$MAX_ENTRIES" -gt 0 ]
log_test $? "route: dest_entries ${MAX_ENTRIES} <= dest_capacity ${CAPACITY:-?} (16) with $NDEST destinations"

tests_summary
