#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Loading and unloading mpbal.ko: no tests in the production module, the
# KUnit suite of mpbal_kunit.ko, module parameter defaults and validation,
# the runtime strategy parameter, and repeated load/unload. Runs in the guest:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko \
#       --kunit mpbal_kunit.ko --tool mpbalctl -- /selftests/mpbal_load.sh
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=selftests/lib.sh
. "$here/lib.sh"
# shellcheck source=selftests/lib_mpbal.sh
. "$here/lib_mpbal.sh"

require_cmd insmod rmmod lsmod dmesg ip sysctl modinfo
[ -f "$MPBAL_KO" ] || die "no module at $MPBAL_KO (run.sh --module)"
MPBAL_KUNIT_KO=${MPBAL_KUNIT_MODULE:-/mpbal/mpbal_kunit.ko}
[ -f "$MPBAL_KUNIT_KO" ] || die "no KUnit module at $MPBAL_KUNIT_KO (run.sh --kunit)"
mpbal_loaded && die "mpbal is already loaded before the test"
mpbal_cleanup_at_exit

# The cases of the suite (src/kunit/mpbal_kunit.rs), in order.
KUNIT_CASES=(
	strategy_names
	sysctl_strategy
	wrr
	hash_range
	desttable
	estimator
	markfield
	percpu
	skb_hash
)

# new_ns_strategy NAME: create netns NAME; NEW_NS_STRATEGY = its strategy.
new_ns_strategy()
{
	NEW_NS_STRATEGY=""
	ns_create "$1" || return 1
	NEW_NS_STRATEGY=$(ns_sysctl_get "$NS_PREFIX$1" net.mpbal.strategy)
}

test_default_load()
{
	local log

	kmsg_mark
	mpbal_load
	log_test $? "insmod with default parameters" "$MPBAL_LOAD_ERR"
	mpbal_loaded
	log_test $? "after insmod: mpbal is in /proc/modules"
	log=$(kmsg_since)
	check_no_tests "$log"

	kmsg_mark
	insmod "$MPBAL_KUNIT_KO"
	log_test $? "insmod mpbal_kunit.ko (the KUnit suite, needs mpbal.ko)"
	log=$(kmsg_since)
	check_kunit "$log"
	rmmod mpbal_kunit
	log_test $? "rmmod mpbal_kunit"
}

# check_no_tests LOG: the production module runs no test and needs no kunit.
check_no_tests()
{
	local rc=0 detail="" deps taint

	grep -q '# Subtest: mpbal' <<<"$1" && { rc=1; detail+="a KUnit suite ran at insmod; "; }
	deps=$(modinfo -F depends "$MPBAL_KO")
	grep -qw kunit <<<"$deps" && { rc=1; detail+="depends: $deps; "; }
	taint=$(cat /sys/module/mpbal/taint)
	[[ $taint == *N* ]] && { rc=1; detail+="taint $taint (TAINT_TEST); "; }
	log_test $rc "insmod mpbal.ko runs no KUnit suite, no TAINT_TEST, depends '${deps}'" "$detail"
}

# check_kunit LOG: one TEST per KUnit case and one for the suite.
check_kunit()
{
	local log=$1 c line rc known_re="" extra

	for c in "${KUNIT_CASES[@]}"; do
		line=$(grep -E "(^|[] ])(not )?ok [0-9]+ $c( |$)" <<<"$log" | tail -n1)
		rc=0
		if [ -z "$line" ]; then
			rc=1
			line="case missing from the KTAP output"
		elif grep -qE "(^|[] ])not ok " <<<"$line" || grep -q '# SKIP' <<<"$line"; then
			rc=1
		fi
		log_test $rc "kunit: $c" "$line"
		known_re+="|$c"
	done
	# Cases the list above does not know yet still get a line (the case
	# lines are indented inside the suite; the suite's own line is not).
	extra=$(grep -E '^\[[ 0-9.]+\] +(not )?ok [0-9]+ [A-Za-z0-9_]+$' <<<"$log" |
		grep -oE "(not )?ok [0-9]+ [A-Za-z0-9_]+$" | grep -vE " (${known_re#|}|mpbal)$")
	while read -r line; do
		[ -n "$line" ] || continue
		log_test 1 "kunit: unexpected case ${line##* }" "$line (update KUNIT_CASES)"
	done <<<"$extra"

	# The suite: "# Subtest: mpbal", plan 1..9, its result line "ok N mpbal".
	rc=0
	grep -q '# Subtest: mpbal$' <<<"$log" || rc=1
	grep -qE "^\[[ 0-9.]+\] +1\.\.${#KUNIT_CASES[@]}$" <<<"$log" || rc=1
	grep -qE "^\[[ 0-9.]+\] ok [0-9]+ mpbal$" <<<"$log" || rc=1
	grep -qE "# mpbal: pass:${#KUNIT_CASES[@]} fail:0 skip:0 total:${#KUNIT_CASES[@]}$" <<<"$log" || rc=1
	log_test $rc "kunit: suite mpbal ran at insmod of mpbal_kunit.ko, ${#KUNIT_CASES[@]} cases, all passed" \
		"$(grep -E 'mpbal|KTAP|1\.\.' <<<"$log" | tail -n 20)"
}

test_default_params()
{
	local v rc=0 detail=""

	v=$(cat $MPBAL_PARAMS/strategy)
	[ "$v" = session ] || { rc=1; detail+="strategy=$v "; }
	v=$(cat $MPBAL_PARAMS/ct_mark_mask)
	[ "$((v))" -eq $((0xffff0000)) ] 2>/dev/null || { rc=1; detail+="ct_mark_mask=$v "; }
	v=$(cat $MPBAL_PARAMS/route_table_size)
	[ "$v" = 1024 ] || { rc=1; detail+="route_table_size=$v "; }
	v=$(cat $MPBAL_PARAMS/manage_hash_policy)
	[ "$v" = Y ] || { rc=1; detail+="manage_hash_policy=$v "; }
	log_test $rc "params: defaults session, 0xffff0000, 1024, Y" "$detail"

	new_ns_strategy dflt
	v=$NEW_NS_STRATEGY
	[ "$v" = session ]
	log_test $? "params: a new netns gets net.mpbal.strategy = session" "got '$v'"

	v=$(cat /proc/net/mpbal/stats 2>/dev/null | awk '$1 == "dest_capacity" { print $2 }')
	[ "$v" = 1024 ]
	log_test $? "params: stats dest_capacity 1024 by default" "got '$v'"
	ns_delete "$NS_PREFIX"dflt
}

test_unload()
{
	local rc=0 detail=""

	mpbal_unload
	log_test $? "rmmod mpbal"
	[ -e /proc/sys/net/mpbal ] && { rc=1; detail+="/proc/sys/net/mpbal still there; "; }
	[ -e /proc/net/mpbal ] && { rc=1; detail+="/proc/net/mpbal still there; "; }
	lsmod | grep -qw '^mpbal' && { rc=1; detail+="lsmod lists mpbal; "; }
	[ -e /sys/module/mpbal ] && { rc=1; detail+="/sys/module/mpbal still there; "; }
	log_test $rc "rmmod: /proc/sys/net/mpbal, /proc/net/mpbal, lsmod entry gone" "$detail"
}

test_good_params()
{
	local v rc=0 detail=""

	mpbal_load strategy=packet ct_mark_mask=0xff00 route_table_size=256 manage_hash_policy=0
	log_test $? "insmod strategy=packet ct_mark_mask=0xff00 route_table_size=256 manage_hash_policy=0" \
		"$MPBAL_LOAD_ERR"
	mpbal_loaded || { log_test 1 "good params: reflected" "module not loaded"; return; }

	v=$(cat $MPBAL_PARAMS/strategy)
	[ "$v" = packet ] || { rc=1; detail+="strategy=$v "; }
	v=$(cat $MPBAL_PARAMS/ct_mark_mask)
	[ "$((v))" -eq $((0xff00)) ] 2>/dev/null || { rc=1; detail+="ct_mark_mask=$v "; }
	v=$(cat $MPBAL_PARAMS/route_table_size)
	[ "$v" = 256 ] || { rc=1; detail+="route_table_size=$v "; }
	v=$(cat $MPBAL_PARAMS/manage_hash_policy)
	[ "$v" = N ] || { rc=1; detail+="manage_hash_policy=$v "; }
	log_test $rc "good params: /sys/module/mpbal/parameters show packet, 0xff00, 256, N" "$detail"

	new_ns_strategy good
	v=$NEW_NS_STRATEGY
	[ "$v" = packet ]
	log_test $? "good params: a new netns gets net.mpbal.strategy = packet" "got '$v'"

	v=$(ip netns exec "$NS_PREFIX"good cat /proc/net/mpbal/stats 2>/dev/null |
		awk '$1 == "dest_capacity" { print $2 }')
	[ "$v" = 256 ]
	log_test $? "good params: stats say dest_capacity 256" "got '$v'"
	ns_delete "$NS_PREFIX"good

	mpbal_unload
	log_test $? "good params: rmmod"
}

# bad_param PARAM=VALUE ALLOWED_TEXT
bad_param()
{
	local arg=$1 allowed=$2 name=${1%%=*} val=${1#*=} rc=0 detail="" log n

	kmsg_mark
	if mpbal_load "$arg"; then
		rc=1
		detail="insmod succeeded; "
	elif ! grep -qE 'Invalid (argument|parameters)' <<<"$MPBAL_LOAD_ERR"; then
		rc=1
		detail="insmod error is not EINVAL: $MPBAL_LOAD_ERR; "
	fi
	if mpbal_loaded; then
		rc=1
		detail+="module left loaded; "
		rmmod mpbal
	fi
	log=$(kmsg_since)
	# mpbal's own line names the allowed values; the kernel's generic
	# "`VAL' invalid for parameter `NAME'" line is not mpbal's doing.
	n=$(grep -cF "mpbal: invalid $name '$val': $allowed" <<<"$log")
	if [ "$n" -ne 1 ]; then
		rc=1
		detail+="$n lines 'mpbal: invalid $name '$val': $allowed'; log: $(grep mpbal <<<"$log" | tr '\n' '|')"
	fi
	log_test $rc "bad param $arg: insmod fails with EINVAL, one mpbal line names the allowed values" "$detail"
}

test_bad_params()
{
	local strat="allowed are route, packet, session, bandwidth"
	local mask="need one contiguous run of set bits"
	local size="need a power of two from 16 to 65536"

	bad_param strategy=bogus "$strat"
	bad_param strategy= "$strat"
	bad_param ct_mark_mask=0 "$mask"
	bad_param ct_mark_mask=0xf0f0 "$mask"
	bad_param route_table_size=1000 "$size"
	bad_param route_table_size=8 "$size"
	bad_param route_table_size=131072 "$size"
}

test_runtime_strategy_param()
{
	local err v rc=0 detail="" log

	mpbal_load
	log_test $? "runtime param: insmod with defaults" "$MPBAL_LOAD_ERR"
	ns_create old || { log_test 1 "runtime param: netns created"; return; }

	kmsg_mark
	err=$({ echo bogus >$MPBAL_PARAMS/strategy; } 2>&1)
	[ $? -ne 0 ] || { rc=1; detail+="write of bogus succeeded; "; }
	grep -q 'Invalid argument' <<<"$err" || { rc=1; detail+="error: $err; "; }
	v=$(cat $MPBAL_PARAMS/strategy)
	[ "$v" = session ] || { rc=1; detail+="param now $v; "; }
	# (echo's newline reaches the parameter's set() too, so the message
	# may be split after 'bogus; only its start is checked.)
	log=$(kmsg_since)
	grep -qF "mpbal: invalid strategy 'bogus" <<<"$log" ||
		{ rc=1; detail+="no mpbal line in dmesg; "; }
	log_test $rc "runtime param: writing bogus to parameters/strategy fails with EINVAL, unchanged" "$detail"

	rc=0
	detail=""
	err=$({ echo route >$MPBAL_PARAMS/strategy; } 2>&1) || { rc=1; detail+="write failed: $err; "; }
	v=$(cat $MPBAL_PARAMS/strategy)
	[ "$v" = route ] || { rc=1; detail+="param now $v; "; }
	log_test $rc "runtime param: writing route to parameters/strategy is accepted" "$detail"

	new_ns_strategy new
	v=$NEW_NS_STRATEGY
	[ "$v" = route ]
	log_test $? "runtime param: a netns created afterwards defaults to route" "got '$v'"

	rc=0
	detail=""
	v=$(ns_sysctl_get "$NS_old" net.mpbal.strategy)
	[ "$v" = session ] || { rc=1; detail+="older netns: $v; "; }
	v=$(sysctl -n net.mpbal.strategy)
	[ "$v" = session ] || { rc=1; detail+="init netns: $v; "; }
	log_test $rc "runtime param: existing netns keep session" "$detail"

	ns_delete "$NS_old" "$NS_new"
	mpbal_unload
	log_test $? "runtime param: rmmod"
}

test_load_loop()
{
	local i rc=0 detail=""

	for i in 1 2 3 4 5; do
		if ! mpbal_load; then
			rc=1
			detail+="insmod $i failed: $MPBAL_LOAD_ERR; "
			break
		fi
		[ -d /proc/sys/net/mpbal ] || { rc=1; detail+="load $i: no sysctls; "; }
		if ! rmmod mpbal; then
			rc=1
			detail+="rmmod $i failed; "
			break
		fi
		if mpbal_loaded || [ -e /proc/net/mpbal ]; then
			rc=1
			detail+="unload $i left traces; "
		fi
	done
	log_test $rc "load/unload 5 times in a row" "$detail"
}

test_default_load
test_default_params
test_unload
test_good_params
test_bad_params
test_runtime_strategy_param
test_load_loop

# kmemleak only reports objects older than 5 s.
sleep 5
tests_summary
