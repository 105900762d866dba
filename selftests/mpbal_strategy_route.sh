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

# test_first_round places every destination (FIRST); test_sticky,
# test_idle_timeout and test_table_bound build on it and run that round
# first when run without it. test_small_table reloads the module.
ALL_TESTS="
	test_first_round
	test_sticky
	test_idle_timeout
	test_table_bound
	test_small_table
"

# shellcheck source=selftests/testbed.sh
. "$(dirname "$0")/testbed.sh"

mpbal_init ip nft jq flowgen mpbalctl timeout

WEIGHTS="1 2 3"
# 60 destinations: 10.0.1.10-39 on dst1, 10.0.2.10-39 on dst2.
DESTS=("${TB_EXTRA_DSTS[@]}")
NDEST=${#DESTS[@]}
DEST_LIST=$(IFS=,; echo "${DESTS[*]}")
PORTS=10	# ports per destination and source in a round

# Largest dest_entries seen and the capacity reported with it.
MAX_ENTRIES=0
CAPACITY=""

snap_track()
{
	bal_snap "$1" || return 1
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

	bg_start A 60 "$NS_SRCA" flowgen udp -d "$DEST_LIST" -p "$base-$((base + PORTS - 1))" -n $n -s 32
	bg_start B 60 "$NS_SRCB" flowgen udp -d "$DEST_LIST" -p "$((base + 100))-$((base + 100 + PORTS - 1))" -n $n -s 32
	bg_wait A; ra=$?
	bg_wait B; rb=$?
	a=$(flowgen_sent "$(bg_out A)")
	b=$(flowgen_sent "$(bg_out B)")
	ROUND_SENT=$((a + b))
	[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ] && [ "$ROUND_SENT" -eq $((2 * n)) ] || {
		log_info "flowgen: $(bg_out A) / $(bg_out B)"
		return 1
	}
}

# acct_read ARRAY: ARRAY[R:DADDR] = packets router R (1..3) got for DADDR.
acct_read()
{
	declare -gA "$1"
	local -n _acc=$1
	local r t a p out

	out=$(routers_acct_dump) || return 1
	_acc=()
	while read -r r t a p; do
		# shellcheck disable=SC2004 # an associative array
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

setup()
{
	mpbal_load strategy=route || die "insmod $MPBAL_KO failed: $MPBAL_LOAD_ERR"
	testbed_up || die "testbed_up failed"
	dests_add || die "adding the destination addresses failed"
	routers_acct_setup || die "nft accounting on the routers failed"
	# shellcheck disable=SC2086
	bal_eq_route $WEIGHTS || die "equalize route"
	bal sysctl -qw net.mpbal.route_idle_timeout=60 || die "route_idle_timeout"
	[ "$(mpbal_stat "$NS_BAL" strategy)" = route ]
	log_test $? "route: strategy=route from the module parameter"
}

# first_round: round 1 (port base 8000); FIRST[DADDR] = the router each
# destination used, and placement's results. Returns round's status, 2 if
# the routers' accounting could not be read.
declare -A FIRST=()
MULTI="" NONE="" PER_ROUTER=""
first_round()
{
	local d rc

	acct_read C0
	snap_track S0
	round 8000
	rc=$?
	snap_track S1
	acct_read C1 || return 2
	placement C0 C1
	log_info "round 1: destinations per uplink up1/up2/up3: $PER_ROUTER; new_choices +$(snap_d S0 S1 s:new_choices) remembered +$(snap_d S0 S1 s:remembered) dest_entries ${S1[s:dest_entries]}"
	FIRST=()
	for d in "${DESTS[@]}"; do FIRST[$d]=${PLACE[$d]}; done
	return $rc
}

# need_first_round: what test_first_round leaves, for a test run without it.
need_first_round()
{
	[ ${#FIRST[@]} -gt 0 ] && return 0
	first_round || log_test 1 "route: setup: round 1 to place the destinations"
}

# 1. First round: each destination takes one uplink, by weight.
test_first_round()
{
	local rc

	first_round
	rc=$?
	[ $rc -eq 2 ] && { log_test 1 "route: round 1: router accounting readable"; return; }
	log_test $rc "route: round 1, $ROUND_SENT datagrams to $NDEST destinations x $PORTS ports from srcA and srcB"
	[ -z "$MULTI" ] && [ -z "$NONE" ]
	log_test $? "route: each of $NDEST destinations used exactly one uplink" \
		"on several uplinks:${MULTI:- none}; on none:${NONE:- none}"
	shares_within "$PER_ROUTER" "$WEIGHTS" 1
	log_test $? "route: destinations per uplink $PER_ROUTER = 10/20/30 +-1 (weights $WEIGHTS)"
}

# 2. Second round, new ports: every destination stays where it was and gets
# all of its packets there.
test_sticky()
{
	local d moved="" short=""

	need_first_round
	acct_read C1 || { log_test 1 "route: router accounting readable"; return; }
	round 8020
	log_test $? "route: round 2, $ROUND_SENT datagrams to the same destinations"
	snap_track S2
	acct_read C2 || { log_test 1 "route: router accounting readable"; return; }
	placement C1 C2
	for d in "${DESTS[@]}"; do
		[ "${PLACE[$d]}" = "${FIRST[$d]}" ] || moved+=" $d:${FIRST[$d]}->${PLACE[$d]}"
		[ "${GROWTH[$d]}" -eq $((2 * PORTS)) ] || short+=" $d:${GROWTH[$d]}"
	done
	log_info "round 2: destinations per uplink $PER_ROUTER; new_choices +$(snap_d S1 S2 s:new_choices) remembered +$(snap_d S1 S2 s:remembered)"
	[ -z "$moved" ] && [ -z "$short" ]
	log_test $? "route: every destination kept its uplink on later traffic" \
		"moved:${moved:- none}; packet count not $((2 * PORTS)) on its uplink:${short:- none}"
}

# 3. Idle timeout: with route_idle_timeout=2 the idle table empties, and
# the next packet to each destination places it again (a new choice).
test_idle_timeout()
{
	local t0 rc out nc re same d

	need_first_round
	bal sysctl -qw net.mpbal.route_idle_timeout=2
	log_test $? "route: set net.mpbal.route_idle_timeout=2"
	t0=$(now_ms)
	wait_until 8 eval '[ "$(mpbal_stat "$NS_BAL" dest_entries)" = 0 ]'
	rc=$?
	log_test $rc "route: the destination table expires when idle (dest_entries 0 after $(($(now_ms) - t0)) ms)"
	snap_track S3
	acct_read C3 || { log_test 1 "route: router accounting readable"; return; }
	out=$(ip netns exec "$NS_SRCA" flowgen udp -d "$DEST_LIST" -p 9000 -n "$NDEST" -s 32)
	rc=$?
	snap_track S4
	acct_read C4 || { log_test 1 "route: router accounting readable"; return; }
	placement C3 C4
	nc=$(snap_d S3 S4 s:new_choices)
	re=$(snap_d S3 S4 s:remembered)
	log_info "after expiry: $out; new_choices +$nc remembered +$re; destinations per uplink $PER_ROUTER; dest_entries ${S4[s:dest_entries]}"
	same=0
	for d in "${DESTS[@]}"; do [ "${PLACE[$d]}" = "${FIRST[$d]}" ] && same=$((same + 1)); done
	log_info "after expiry: $same of $NDEST destinations got their old uplink again"
	[ "$rc" -eq 0 ] && [ "$nc" -eq "$NDEST" ] && [ "$re" -eq 0 ] && [ -z "$MULTI" ] && [ -z "$NONE" ]
	log_test $? "route: after the idle timeout each destination was placed again ($nc new choices of $NDEST)"
	shares_within "$PER_ROUTER" "$WEIGHTS" 1
	log_test $? "route: placed again by weight: $PER_ROUTER = 10/20/30 +-1"
}

# The largest dest_entries seen by the tests before (and by round 1).
test_table_bound()
{
	need_first_round
	[ -n "$CAPACITY" ] && [ "$MAX_ENTRIES" -le "$CAPACITY" ] && [ "$MAX_ENTRIES" -ge "$NDEST" ]
	log_test $? "route: dest_entries (max $MAX_ENTRIES, $NDEST destinations) <= dest_capacity $CAPACITY"
}

# 4. A table smaller than the set of destinations: reload with
# route_table_size=16 (the equalize route stays in the FIB). Entries are
# evicted, never more than the capacity; traffic still flows.
test_small_table()
{
	local rc tx total

	mpbal_unload
	log_test $? "route: rmmod with the testbed up"
	mpbal_load strategy=route route_table_size=16
	log_test $? "route: insmod route_table_size=16" "$MPBAL_LOAD_ERR"
	wait_until 5 bal_hash_ready
	log_test $? "route: the equalize route is picked up again ($(mpbal_stat "$NS_BAL" equalize_routes) route, hash policy $(mpbal_stat "$NS_BAL" hash_policy))"
	MAX_ENTRIES=0 CAPACITY=""
	snap_track S5
	round 8040
	rc=$?
	snap_track S6
	tx=$(snap_d3 S5 S6 tx)
	# shellcheck disable=SC2086
	total=$(sum $tx)
	log_info "small table: dest_entries ${S6[s:dest_entries]} of ${S6[s:dest_capacity]}; new_choices +$(snap_d S5 S6 s:new_choices) remembered +$(snap_d S5 S6 s:remembered); link tx $tx"
	[ "$rc" -eq 0 ] && [ "$total" -eq "$ROUND_SENT" ]
	log_test $? "route: with a 16-entry table all $ROUND_SENT datagrams to $NDEST destinations forwarded ($total)"
	[ "$CAPACITY" = 16 ] && [ "$MAX_ENTRIES" -le 16 ] && [ "$MAX_ENTRIES" -gt 0 ]
	log_test $? "route: dest_entries ${MAX_ENTRIES} <= dest_capacity ${CAPACITY:-?} (16) with $NDEST destinations"
}

setup
tests_run
mpbal_finish
tests_summary
