#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# net.mpbal.* sysctls: strategy names, numeric ranges, privileges, user
# namespaces, per-netns independence, per-device capacity, and mpbalctl's
# strategy, link and apply commands. Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       [--bin /usr/bin/setpriv] -- /selftests/mpbal_sysctl.sh
set -u

# Each test starts from what setup and the tests before it leave: the
# defaults (test_numeric restores them). test_mpbalctl_strategy uses the
# netns a and b of test_netns_independent and makes them when run alone.
ALL_TESTS="
	test_available_strategies
	test_strategy_names
	test_strategy_invalid
	test_numeric
	test_unprivileged
	test_userns
	test_netns_independent
	test_mpbalctl_strategy
	test_devconf
	test_mpbalctl_apply
"

# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/lib.sh"

mpbal_init ip sysctl mpbalctl jq unshare

setup()
{
	mpbal_load || die "insmod failed: $MPBAL_LOAD_ERR"
	mpbal_strategies || die "no net.mpbal.available_strategies"
}

D=$MPBAL_SYSCTL_DIR
STRAT=$D/strategy

# strategy_is NAME: the file reads exactly "NAME\n".
strategy_is()
{
	read_raw "$STRAT" && [ "$RAW" = "$1"$'\n' ]
}

cur_strategy()
{
	local v

	read -r v <"$STRAT"
	echo "$v"
}

# net.mpbal.available_strategies: read-only, and the same names in a new
# netns (mpbal_strategies read them in setup).
test_available_strategies()
{
	local rc=0 detail="" v

	log_info "available strategies: ${MPBAL_STRATEGIES[*]}"
	write_rejected 'Permission denied|Operation not permitted' "$D/available_strategies" route ||
		{ rc=1; detail+="$REJECT_WHY; "; }
	read -r v <"$D/available_strategies"
	[ "$v" = "${MPBAL_STRATEGIES[*]}" ] || { rc=1; detail+="now '$v'; "; }
	log_test $rc "available_strategies: writing fails (read-only), unchanged" "$detail"

	rc=0
	ns_create avail || { log_test 1 "available_strategies: netns"; return; }
	v=$(ip netns exec "$NS_avail" cat "$D/available_strategies") || rc=1
	[ "$v" = "${MPBAL_STRATEGIES[*]}" ] && [ ${#MPBAL_STRATEGIES[@]} -gt 1 ] || rc=1
	log_test $rc "available_strategies: a new netns lists the same names (${MPBAL_STRATEGIES[*]})" \
		"init '${MPBAL_STRATEGIES[*]}', new netns '$v'"
	ns_delete "$NS_avail"
}

# other_strategy NAME: a name other than NAME (writing it first makes a
# no-op write of NAME detectable).
other_strategy()
{
	local s

	for s in "${MPBAL_STRATEGIES[@]}"; do
		[ "$s" != "$1" ] && { echo "$s"; return; }
	done
}

test_strategy_names()
{
	local s rc detail

	strategy_is session
	log_test $? "strategy: default reads 'session\\n'" "read '$(cur_strategy)'"

	for s in "${MPBAL_STRATEGIES[@]}"; do
		rc=0
		detail=""
		# Start from another name so a no-op write cannot pass.
		write_raw "$STRAT" "$(other_strategy "$s")"
		write_raw "$STRAT" "$s"$'\n' || { rc=1; detail+="'$s\\n': $WRITE_ERR; "; }
		strategy_is "$s" || { rc=1; detail+="after '$s\\n' read '$(cur_strategy)'; "; }
		write_raw "$STRAT" "$(other_strategy "$s")"
		write_raw "$STRAT" "$s" || { rc=1; detail+="'$s': $WRITE_ERR; "; }
		strategy_is "$s" || { rc=1; detail+="after '$s' read '$(cur_strategy)'; "; }
		log_test $rc "strategy: write '$s' with and without newline, read back" "$detail"
	done

	rc=0
	detail=""
	sysctl -q -w net.mpbal.strategy=packet >/dev/null || { rc=1; detail+="sysctl -w failed; "; }
	[ "$(sysctl -n net.mpbal.strategy)" = packet ] || { rc=1; detail+="sysctl -n: $(sysctl -n net.mpbal.strategy); "; }
	strategy_is packet || { rc=1; detail+="file: $(cur_strategy); "; }
	sysctl -q -w net.mpbal.strategy=bandwidth >/dev/null || { rc=1; detail+="sysctl -w bandwidth failed; "; }
	[ "$(sysctl -n net.mpbal.strategy)" = bandwidth ] || { rc=1; detail+="sysctl -n: $(sysctl -n net.mpbal.strategy); "; }
	log_test $rc "strategy: sysctl -w net.mpbal.strategy=packet/bandwidth works" "$detail"
}

# bad_strategy LABEL DATA: writing DATA fails with EINVAL, value unchanged.
bad_strategy()
{
	local label=$1 data=$2 rc=0 detail=""

	write_raw "$STRAT" bandwidth || { log_test 1 "strategy: invalid $label rejected" "setup: $WRITE_ERR"; return; }
	write_rejected 'Invalid argument' "$STRAT" "$data" || { rc=1; detail+="$REJECT_WHY; "; }
	strategy_is bandwidth || { rc=1; detail+="value now '$(cur_strategy)'; "; }
	log_test $rc "strategy: invalid $label rejected with EINVAL, unchanged" "$detail"
}

test_strategy_invalid()
{
	local long

	printf -v long '%0100d' 0
	long=${long//0/r}
	bad_strategy "'bogus'" bogus
	bad_strategy "empty (newline only)" $'\n'
	bad_strategy "'Session'" Session
	bad_strategy "' route'" " route"
	bad_strategy "'route route'" "route route"
	bad_strategy "100-char string" "$long"

	# sysctl(8) reports the failure too.
	local rc=0
	sysctl -q -w net.mpbal.strategy=bogus >/dev/null 2>&1 && rc=1
	strategy_is bandwidth || rc=1
	log_test $rc "strategy: sysctl -w net.mpbal.strategy=bogus fails, unchanged"
}

# numeric NAME DEFAULT "GOOD.." "BAD.."
numeric()
{
	local name=$1 def=$2 good=$3 bad=$4 f=$D/$1 v rc detail last

	read -r v <"$f"
	[ "$v" = "$def" ]
	log_test $? "$name: default $def" "read '$v'"

	rc=0
	detail=""
	for v in $good; do
		write_raw "$f" "$v"$'\n' || { rc=1; detail+="$v: $WRITE_ERR; "; }
		read -r last <"$f"
		[ "$last" = "$v" ] || { rc=1; detail+="wrote $v read $last; "; }
	done
	log_test $rc "$name: in-range writes ($good) stick" "$detail"

	for v in $bad; do
		rc=0
		detail=""
		read -r last <"$f"
		write_rejected 'Invalid argument' "$f" "$v"$'\n' || { rc=1; detail+="$REJECT_WHY; "; }
		read -r v2 <"$f"
		[ "$v2" = "$last" ] || { rc=1; detail+="value $last -> $v2; "; }
		log_test $rc "$name: out-of-range $v rejected with EINVAL, unchanged" "$detail"
	done
	write_raw "$f" "$def"
}

test_numeric()
{
	numeric route_idle_timeout 60 "1 3600 120" "0 3601"
	numeric bw_interval_ms 1000 "100 60000 250" "99 60001"
	numeric bw_ewma_log 3 "0 8 5" "9 -1"
	numeric flowlet_gap_us 50000 "100 10000000 20000" "99 10000001"
	numeric ct_flush_on_down 0 "1 0" "2 -1"
	numeric flowlet_queue_wait 1 "0 1" "2 -1"
}

# status_field FIELD: from a /proc/PID/status text on stdin.
status_field()
{
	awk -v f="$1:" '$1 == f { print $2 }'
}

# writes_refused ERROR_RE KEY VALUE EXPECTED WRAPPER..: run as WRAPPER,
# writing packet to net.mpbal.strategy (now route) and VALUE to
# net.mpbal.KEY (now EXPECTED) both fail with ERROR_RE and change nothing;
# REFUSED_DETAIL says what went wrong.
writes_refused()
{
	local re=$1 key=$2 val=$3 exp=$4 v

	shift 4
	REFUSED_DETAIL=""
	write_rejected "$re" "$STRAT" packet "$@" || REFUSED_DETAIL+="strategy: $REJECT_WHY; "
	strategy_is route || REFUSED_DETAIL+="strategy now $(cur_strategy); "
	write_rejected "$re" "$D/$key" "$val" "$@" || REFUSED_DETAIL+="$key: $REJECT_WHY; "
	read -r v <"$D/$key"
	[ "$v" = "$exp" ] || REFUSED_DETAIL+="$key now $v; "
	[ -z "$REFUSED_DETAIL" ]
}

test_unprivileged()
{
	local st uid rc detail v

	log_info "privilege tool: $PRIV_TOOL (${AS_NOBODY[*]} | ${NO_NETADMIN[*]})"
	write_raw "$STRAT" route

	# uid 65534.
	st=$("${AS_NOBODY[@]}" cat /proc/self/status)
	uid=$(status_field Uid <<<"$st")
	rc=0
	detail=""
	[ "$uid" = 65534 ] || { rc=1; detail+="uid '$uid'; "; }
	[ "$(status_field CapEff <<<"$st")" = 0000000000000000 ] || { rc=1; detail+="CapEff $(status_field CapEff <<<"$st"); "; }
	log_test $rc "unprivileged: the uid 65534 writer has uid 65534 and no capabilities" "$detail"

	writes_refused . route_idle_timeout 30 60 "${AS_NOBODY[@]}"
	log_test $? "unprivileged: uid 65534 cannot write net.mpbal.*, unchanged" "$REFUSED_DETAIL ($WRITE_ERR)"

	v=$("${AS_NOBODY[@]}" cat "$STRAT")
	[ "$v" = route ]
	log_test $? "unprivileged: uid 65534 can read net.mpbal.strategy" "read '$v'"

	# Root without CAP_NET_ADMIN.
	st=$("${NO_NETADMIN[@]}" cat /proc/self/status)
	rc=0
	detail="Uid $(status_field Uid <<<"$st") CapEff $(status_field CapEff <<<"$st") CapBnd $(status_field CapBnd <<<"$st")"
	cap_bit_set "$(status_field CapEff <<<"$st")" "$CAP_NET_ADMIN" && rc=1
	cap_bit_set "$(status_field CapPrm <<<"$st")" "$CAP_NET_ADMIN" && rc=1
	cap_bit_set "$(status_field CapAmb <<<"$st")" "$CAP_NET_ADMIN" && rc=1
	if [ "$PRIV_TOOL" = setpriv ]; then
		[ "$(status_field Uid <<<"$st")" = 0 ] || rc=1
		cap_bit_set "$(status_field CapBnd <<<"$st")" "$CAP_NET_ADMIN" && rc=1
		cap_bit_set "$(status_field CapInh <<<"$st")" "$CAP_NET_ADMIN" && rc=1
		# Root keeps the rest (e.g. CAP_DAC_OVERRIDE, bit 1).
		cap_bit_set "$(status_field CapEff <<<"$st")" 1 || rc=1
	else
		# A user namespace of its own: no capability over init's.
		[ "$("${NO_NETADMIN[@]}" readlink /proc/self/ns/user)" != "$(readlink /proc/self/ns/user)" ] || rc=1
	fi
	log_test $rc "no CAP_NET_ADMIN: the writer is root without cap_net_admin" "$detail"

	writes_refused 'Operation not permitted' bw_ewma_log 5 3 "${NO_NETADMIN[@]}"
	log_test $? "no CAP_NET_ADMIN: net.mpbal.* writes fail with EPERM, unchanged" "$REFUSED_DETAIL"

	v=$("${NO_NETADMIN[@]}" cat "$STRAT")
	[ "$v" = route ]
	log_test $? "no CAP_NET_ADMIN: reading net.mpbal.strategy works" "read '$v'"
}

test_userns()
{
	local out rc=0

	write_raw "$STRAT" route
	# shellcheck disable=SC2016 # expanded by the inner bash
	out=$(unshare -U -r -n bash -c '
		f=/proc/sys/net/mpbal/strategy
		read -r a <$f
		printf packet >$f || exit 1
		read -r b <$f
		echo "$a $b"' 2>&1) || rc=1
	[ "$out" = "session packet" ] || rc=1
	log_test $rc "userns: root of unshare -U -r -n sets its own netns's strategy" "got '$out'"

	strategy_is route
	log_test $? "userns: the parent netns's strategy is unchanged" "now $(cur_strategy)"
}

# netns_ab: netns a (strategy route) and b (bandwidth), made once.
netns_ab()
{
	[ -n "${NS_a:-}" ] && return 0
	ns_create a b || return 1
	ns_sysctl "$NS_a" net.mpbal.strategy=route &&
		ns_sysctl "$NS_b" net.mpbal.strategy=bandwidth
}

test_netns_independent()
{
	local a b rc=0

	netns_ab || { log_test 1 "netns: create"; return; }
	write_raw "$STRAT" packet
	a=$(ns_sysctl_get "$NS_a" net.mpbal.strategy)
	b=$(ns_sysctl_get "$NS_b" net.mpbal.strategy)
	[ "$a" = route ] && [ "$b" = bandwidth ] && strategy_is packet || rc=1
	log_test $rc "netns: two netns keep different strategies (route, bandwidth; init packet)" \
		"a=$a b=$b init=$(cur_strategy)"
}

test_mpbalctl_strategy()
{
	local out err rc detail s names=()

	netns_ab || { log_test 1 "mpbalctl: netns a and b"; return; }
	write_raw "$STRAT" session
	out=$(mpbalctl strategy)
	[ "$out" = session ]
	log_test $? "mpbalctl: 'strategy' prints the current name" "got '$out'"

	rc=0
	detail=""
	# Every name, session (the current one) last so that each set changes it.
	for s in "${MPBAL_STRATEGIES[@]}"; do
		[ "$s" = session ] || names+=("$s")
	done
	for s in "${names[@]}" session; do
		mpbalctl strategy set "$s" || { rc=1; detail+="set $s failed; "; }
		strategy_is "$s" || { rc=1; detail+="after set $s: $(cur_strategy); "; }
		out=$(mpbalctl strategy show)
		[ "$out" = "$s" ] || { rc=1; detail+="show: $out; "; }
	done
	log_test $rc "mpbalctl: 'strategy set NAME' switches to each name" "$detail"

	rc=0
	err=$(mpbalctl strategy set bogus 2>&1 >/dev/null)
	out=$?
	[ "$out" -eq 2 ] || rc=1
	grep -qF "$MPBAL_STRATEGY_LIST" <<<"$err" || rc=1
	strategy_is session || rc=1
	log_test $rc "mpbalctl: 'strategy set bogus' exits 2, names the allowed, changes nothing" \
		"exit $out, stderr: $(head -n1 <<<"$err"), now $(cur_strategy)"

	rc=0
	detail=""
	ns_sysctl "$NS_a" net.mpbal.strategy=route
	mpbalctl -n "$NS_a" strategy set bandwidth || { rc=1; detail+="set failed; "; }
	out=$(ns_sysctl_get "$NS_a" net.mpbal.strategy)
	[ "$out" = bandwidth ] || { rc=1; detail+="netns a: $out; "; }
	out=$(mpbalctl -n "$NS_a" strategy)
	[ "$out" = bandwidth ] || { rc=1; detail+="show -n: $out; "; }
	strategy_is session || { rc=1; detail+="init: $(cur_strategy); "; }
	out=$(ns_sysctl_get "$NS_b" net.mpbal.strategy)
	[ "$out" = bandwidth ] || { rc=1; detail+="netns b: $out; "; }
	log_test $rc "mpbalctl: -n NETNS acts on that netns only" "$detail"

	rc=0
	detail=""
	out=$(mpbalctl -j strategy | jq -e -r .strategy) || rc=1
	[ "$out" = session ] || { rc=1; detail+="-j strategy: $out; "; }
	out=$(mpbalctl -n "$NS_a" -j strategy | jq -e -r .strategy) || rc=1
	[ "$out" = bandwidth ] || { rc=1; detail+="-n -j strategy: $out; "; }
	out=$(mpbalctl -j stats | jq -e -r '.counters.strategy, (.counters.packets_fwd | type), (.uplinks | type)' | tr '\n' ' ') || rc=1
	[ "$out" = "session number array " ] || { rc=1; detail+="-j stats: $out; "; }
	out=$(mpbalctl -j link show | jq -e -r type) || rc=1
	[ "$out" = array ] || { rc=1; detail+="-j link show: $out; "; }
	log_test $rc "mpbalctl: -j output parses with jq (strategy, stats, link show)" "$detail"
}

# In netns c: conf dirs follow the devices.
test_devconf()
{
	local ns out rc detail devs confs v

	ns_create c || { log_test 1 "devconf: netns"; return; }
	ns=$NS_c
	ip -n "$ns" link add dm0 type dummy &&
		ip -n "$ns" link add ve0 type veth peer name ve1 ||
		{ log_test 1 "devconf: create dummy and veth"; return; }

	# shellcheck disable=SC2016 # expanded by the inner bash
	out=$(ip netns exec "$ns" bash -c '
		ls /sys/class/net | sort | tr "\n" " "; echo
		ls /proc/sys/net/mpbal/conf | sort | tr "\n" " "; echo
		cat /proc/sys/net/mpbal/conf/*/capacity | tr "\n" " "')
	{ read -r devs; read -r confs; read -r v; } <<<"$out"
	rc=0
	# Every device has one (the kernel may add e.g. sit0 to each netns).
	[ "$confs" = "$devs" ] || rc=1
	for d in lo dm0 ve0 ve1; do
		[[ " $confs " == *" $d "* ]] || rc=1
	done
	[[ "$v" =~ ^0( 0)*$ ]] || rc=1
	log_test $rc "devconf: net.mpbal.conf.DEV.capacity exists (0) for every device: lo, dummy, veth" \
		"devices '$devs' conf '$confs' capacities '$v'"

	rc=0
	detail=""
	for v in 12345 100000000 18446744073709551615 0; do
		write_raw "$D/conf/ve1/capacity" "$v"$'\n' ip netns exec "$ns" ||
			{ rc=1; detail+="write $v: $WRITE_ERR; "; }
		out=$(ip netns exec "$ns" cat "$D/conf/ve1/capacity")
		[ "$out" = "$v" ] || { rc=1; detail+="wrote $v read $out; "; }
	done
	log_test $rc "devconf: capacity writes (12345, 100000000, 2^64-1, 0) read back" "$detail"

	rc=0
	detail=""
	for v in 1 32 0; do
		write_raw "$D/conf/ve1/uplink_id" "$v"$'\n' ip netns exec "$ns" ||
			{ rc=1; detail+="write $v: $WRITE_ERR; "; }
		out=$(ip netns exec "$ns" cat "$D/conf/ve1/uplink_id")
		[ "$out" = "$v" ] || { rc=1; detail+="wrote $v read $out; "; }
	done
	write_raw "$D/conf/ve1/uplink_id" 5 ip netns exec "$ns"
	for v in 33 -1 x; do
		write_rejected 'Invalid argument' "$D/conf/ve1/uplink_id" "$v" ip netns exec "$ns" ||
			{ rc=1; detail+="$v: $REJECT_WHY; "; }
	done
	out=$(ip netns exec "$ns" cat "$D/conf/ve1/uplink_id")
	[ "$out" = 5 ] || { rc=1; detail+="after bad writes: $out; "; }
	write_raw "$D/conf/ve1/uplink_id" 0 ip netns exec "$ns"
	log_test $rc "devconf: uplink_id takes 0..32 (1, 32, 0 read back); 33, -1, x fail with EINVAL, unchanged" "$detail"

	rc=0
	detail=""
	# A capacity of 1 bit/s: the rename check does not depend on the
	# check of larger writes above.
	write_raw "$D/conf/dm0/capacity" 1 ip netns exec "$ns" || { rc=1; detail+="write: $WRITE_ERR; "; }
	ip -n "$ns" link set dm0 name dmx || { rc=1; detail+="rename failed; "; }
	# shellcheck disable=SC2016 # expanded by the inner bash
	out=$(ip netns exec "$ns" bash -c '
		cd /proc/sys/net/mpbal/conf
		[ -e dm0 ] && echo dm0-still-there
		cat dmx/capacity')
	[ "$out" = 1 ] || { rc=1; detail+="after rename: '$out'; "; }
	log_test $rc "devconf: rename moves conf.dm0 to conf.dmx keeping its capacity" "$detail"

	rc=0
	detail=""
	write_rejected 'Operation not permitted' "$D/conf/dmx/capacity" 2 ip netns exec "$ns" "${NO_NETADMIN[@]}" ||
		{ rc=1; detail+="$REJECT_WHY; "; }
	v=$(ip netns exec "$ns" cat "$D/conf/dmx/capacity")
	[ "$v" = 1 ] || { rc=1; detail+="capacity now $v; "; }
	write_raw "$D/conf/dmx/capacity" 2 ip netns exec "$ns" "${AS_NOBODY[@]}" && { rc=1; detail+="uid 65534 write succeeded; "; }
	v=$(ip netns exec "$ns" cat "$D/conf/dmx/capacity")
	[ "$v" = 1 ] || { rc=1; detail+="capacity now $v; "; }
	log_test $rc "devconf: capacity writes without CAP_NET_ADMIN fail (EPERM), unchanged" "$detail"

	rc=0
	detail=""
	mpbalctl -n "$ns" link set ve0 capacity 10mbit || { rc=1; detail+="10mbit failed; "; }
	v=$(ip netns exec "$ns" cat "$D/conf/ve0/capacity")
	[ "$v" = 10000000 ] || { rc=1; detail+="10mbit -> $v; "; }
	mpbalctl -n "$ns" link set ve0 capacity 1.5mbit || { rc=1; detail+="1.5mbit failed; "; }
	v=$(ip netns exec "$ns" cat "$D/conf/ve0/capacity")
	[ "$v" = 1500000 ] || { rc=1; detail+="1.5mbit -> $v; "; }
	log_test $rc "devconf: mpbalctl link set DEV capacity 10mbit / 1.5mbit write 10000000 / 1500000" "$detail"

	rc=0
	detail=""
	local before
	before=$(ip netns exec "$ns" cat "$D/conf/ve0/capacity")
	for g in fast 10xbit -5mbit ""; do
		mpbalctl -n "$ns" link set ve0 capacity "$g" 2>/dev/null
		out=$?
		[ "$out" -eq 2 ] || { rc=1; detail+="'$g' exit $out; "; }
	done
	v=$(ip netns exec "$ns" cat "$D/conf/ve0/capacity")
	[ "$v" = "$before" ] || { rc=1; detail+="capacity $before -> $v; "; }
	log_test $rc "devconf: mpbalctl link set with a garbage rate exits 2, changes nothing" "$detail"

	rc=0
	detail=""
	ip -n "$ns" link del dmx || { rc=1; detail+="del failed; "; }
	ip -n "$ns" link del ve0 || { rc=1; detail+="del veth failed; "; }
	out=$(ip netns exec "$ns" ls /proc/sys/net/mpbal/conf | tr '\n' ' ')
	[[ " $out " == *" lo "* ]] || { rc=1; detail+="conf.lo gone: $out; "; }
	[[ " $out " == *" dmx "* || " $out " == *" ve0 "* || " $out " == *" ve1 "* ]] &&
		{ rc=1; detail+="conf now: $out; "; }
	log_test $rc "devconf: conf.DEV disappears when the device is deleted" "$detail"
}

# apply_conf FILE: the configuration test_mpbalctl_apply applies (apply.rs's
# unit tests use it too). The tests name its lines: 4 flowlet_gap_us, 7 the
# default route's nexthops, 19 reliability.
apply_conf()
{
	cp "$(dirname "$0")/mpbal_apply.toml" "$1"
}

# apply_state NS: what apply may change, to compare before and after (two
# processes: forks are slow under TCG, and sysctl -a reads all of /proc/sys).
apply_state()
{
	ip -n "$1" route show table all
	ip netns exec "$1" grep -r . /proc/sys/net/mpbal
}

# apply_broken NS STATE CODE ERROR DESCRIPTION SED_EXPR..: the file, with
# the sed expressions applied, fails with exit CODE and exactly the message
# "mpbalctl: FILE:ERROR", and NS's apply_state is still STATE.
apply_broken()
{
	local ns=$1 state=$2 code=$3 want=$4 desc=$5 bad=$MPBAL_TMP/bad.toml err rc e sed=()

	shift 5
	for e in "$@"; do sed+=(-e "$e"); done
	apply_conf "$bad"
	sed -i "${sed[@]}" "$bad"
	err=$(mpbalctl -n "$ns" apply -f "$bad" 2>&1 >/dev/null)
	rc=$?
	[ "$rc" = "$code" ] && [ "$err" = "mpbalctl: $bad:$want" ] && [ "$(apply_state "$ns")" = "$state" ]
	log_test $? "$desc" "exit $rc: $err"
}

# mpbalctl apply: a file into a fresh netns, then again (no changes), then
# broken files (nothing changes, the line is named), and --check. Then
# link set tier/state and link show on the uplinks it made.
test_mpbalctl_apply()
{
	local ns f=$MPBAL_TMP/mpbal.toml bad=$MPBAL_TMP/bad.toml out err rc detail before after code
	local want v

	ns_create apply || { log_test 1 "apply: netns"; return; }
	ns=$NS_apply
	ip -n "$ns" -batch - <<-EOF || { log_test 1 "apply: topology"; return; }
		link add wan1 type veth peer name wan1p
		link add wan2 type veth peer name wan2p
		addr add 192.0.2.2/24 dev wan1
		addr add 198.51.100.2/24 dev wan2
		link set wan1 up
		link set wan1p up
		link set wan2 up
		link set wan2p up
		route add default via 192.0.2.1 dev wan1
		route add 10.9.0.0/16 via 198.51.100.1
	EOF
	apply_conf "$f"

	rc=0
	detail=""
	out=$(mpbalctl -n "$ns" apply -f "$f" 2>&1) || { rc=1; detail+="exit $?; "; }
	for want in "sysctl net.mpbal.strategy session -> flowlet" \
		"sysctl net.mpbal.flowlet_gap_us 50000 -> 20000" \
		"sysctl net.mpbal.conf.wan1.capacity 0 -> 10000000" \
		"sysctl net.mpbal.conf.wan2.capacity 0 -> 20000000" \
		"route replace default table main equalize nexthop via 192.0.2.1 dev wan1 weight 1 nexthop via 198.51.100.1 dev wan2 weight 2 (was: default table main nexthop via 192.0.2.1 dev wan1 weight 1 metric 0 proto boot)" \
		"route add 20.0.0.0/24 table 100 equalize nexthop via 192.0.2.1 weight 1 nexthop via 198.51.100.1 weight 1"; do
		grep -qxF "$want" <<<"$out" || { rc=1; detail+="no line '$want'; "; }
	done
	[ "$(wc -l <<<"$out")" = 6 ] || { rc=1; detail+="$(wc -l <<<"$out") lines; "; }
	log_test $rc "apply: a fresh netns: prints its 6 changes (4 sysctls, replace, add)" "$detail out: $out"

	rc=0
	detail=""
	[ "$(ns_sysctl_get "$ns" net.mpbal.strategy)" = flowlet ] || { rc=1; detail+="strategy; "; }
	[ "$(ns_sysctl_get "$ns" net.mpbal.flowlet_gap_us)" = 20000 ] || { rc=1; detail+="gap; "; }
	[ "$(ns_sysctl_get "$ns" net.mpbal.conf.wan1.capacity)" = 10000000 ] || { rc=1; detail+="wan1; "; }
	[ "$(ns_sysctl_get "$ns" net.mpbal.conf.wan2.capacity)" = 20000000 ] || { rc=1; detail+="wan2; "; }
	out=$(mpbalctl -n "$ns" -j route show table all) || rc=1
	v=$(jq -r '.[] | [.dst, .table, .equalize, (.nexthops | map("\(.gateway)@\(.dev)x\(.weight)") | join(","))] | join(" ")' <<<"$out")
	grep -qxF "default main true 192.0.2.1@wan1x1,198.51.100.1@wan2x2" <<<"$v" || { rc=1; detail+="default; "; }
	grep -qxF "20.0.0.0/24 100 true 192.0.2.1@wan1x1,198.51.100.1@wan2x1" <<<"$v" || { rc=1; detail+="table 100; "; }
	ip -n "$ns" route show 10.9.0.0/16 | grep -q "via 198.51.100.1" || { rc=1; detail+="10.9.0.0/16 gone; "; }
	log_test $rc "apply: sysctls and equalize routes as the file says, other routes left" "$detail routes: $v"

	before=$(apply_state "$ns")
	out=$(mpbalctl -n "$ns" apply -f "$f" 2>&1)
	code=$?
	after=$(apply_state "$ns")
	[ "$code" = 0 ] && [ "$out" = "no changes" ] && [ "$before" = "$after" ]
	log_test $? "apply: the same file again prints 'no changes', changes nothing" "exit $code: $out"

	# A bad value on line 19, after lines that would change things.
	apply_broken "$ns" "$before" 2 "19:15: reliability 3 is more than the 2 target(s)" \
		"apply: a bad value (line 19) exits 2, names 19:15, changes nothing" \
		's/^strategy = .*/strategy = "packet"/' 's/weight = 2/weight = 3/' \
		's/"20mbit"/"30mbit"/' 's/^reliability = 2/reliability = 3/'
	# A device the netns does not have, after a strategy that would change.
	apply_broken "$ns" "$before" 1 '7:80: Cannot find device "wan3"' \
		"apply: a missing device (line 7) exits 1, names 7:80, changes nothing" \
		's/^strategy = .*/strategy = "packet"/' 's/dev = "wan2"/dev = "wan3"/'

	rc=0
	detail=""
	out=$(mpbalctl apply --check -f "$f" 2>&1) || { rc=1; detail+="good: exit $?; "; }
	[ "$out" = "$f: ok" ] || { rc=1; detail+="good: '$out'; "; }
	apply_conf "$bad"
	sed -i 's/^flowlet_gap_us = .*/flowlet_gap_us = 5/' "$bad"
	err=$(mpbalctl -n "$ns" apply --check -f "$bad" 2>&1)
	code=$?
	[ "$code" = 2 ] || { rc=1; detail+="bad: exit $code; "; }
	[ "$err" = "mpbalctl: $bad:4:18: net.mpbal.flowlet_gap_us = 5 is out of range (100..10000000)" ] ||
		{ rc=1; detail+="bad: '$err'; "; }
	[ "$(apply_state "$ns")" = "$before" ] || { rc=1; detail+="changed; "; }
	log_test $rc "apply --check: ok for the good file, 4:18 for a bad one" "$detail"

	rc=0
	detail=""
	mpbalctl -n "$ns" link set wan2 tier 2 state down || { rc=1; detail+="set: exit $?; "; }
	[ "$(ns_sysctl_get "$ns" net.mpbal.conf.wan2.tier)" = 2 ] || { rc=1; detail+="tier; "; }
	[ "$(ns_sysctl_get "$ns" net.mpbal.conf.wan2.down)" = 1 ] || { rc=1; detail+="down; "; }
	out=$(mpbalctl -n "$ns" -j link show dev wan2 | jq -c '[.[0].tier, .[0].admin]')
	[ "$out" = '[2,"down"]' ] || { rc=1; detail+="show: $out; "; }
	mpbalctl -n "$ns" link set wan2 tier 1 state up || { rc=1; detail+="restore; "; }
	log_test $rc "link set DEV tier 2 state down: written, link show -j says so" "$detail"
	ns_delete "$ns"
}

setup
tests_run
mpbal_finish
tests_summary
