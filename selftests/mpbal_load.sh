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

# In this order each test finds the module as the one before left it
# (loaded with defaults after test_default_load, unloaded after
# test_unload); run alone, a test loads or unloads it first.
ALL_TESTS="
	test_default_load
	test_default_params
	test_unload
	test_good_params
	test_bad_params
	test_runtime_strategy_param
	test_load_loop
"

# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/lib.sh"

mpbal_init lsmod dmesg ip sysctl modinfo
MPBAL_KUNIT_KO=${MPBAL_KUNIT_MODULE:-/mpbal/mpbal_kunit.ko}
[ -f "$MPBAL_KUNIT_KO" ] || die "no KUnit module at $MPBAL_KUNIT_KO (run.sh --kunit)"

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
	entropy_seeded
	hash_policy_netevent
)

# new_ns_strategy NAME: create netns NAME; NEW_NS_STRATEGY = its strategy.
new_ns_strategy()
{
	NEW_NS_STRATEGY=""
	ns_create "$1" || return 1
	NEW_NS_STRATEGY=$(ns_sysctl_get "$NS_PREFIX$1" net.mpbal.strategy)
}

# need_loaded: a test that expects the module loaded with defaults (as
# test_default_load leaves it) loads it when run alone.
need_loaded()
{
	mpbal_loaded && return 0
	mpbal_load || log_test 1 "setup: insmod with default parameters" "$MPBAL_LOAD_ERR"
}

# need_unloaded: a test that loads the module itself unloads it first.
need_unloaded()
{
	mpbal_loaded || return 0
	mpbal_unload || log_test 1 "setup: rmmod"
}

# need_strategies: MPBAL_STRATEGIES, read from the module (loaded for that
# if need be: bad_param's expected message lists the names).
need_strategies()
{
	[ ${#MPBAL_STRATEGIES[@]} -gt 0 ] && return 0
	if mpbal_loaded; then
		mpbal_strategies
	else
		mpbal_load && mpbal_strategies
		mpbal_unload
	fi
	[ ${#MPBAL_STRATEGIES[@]} -gt 0 ] ||
		log_test 1 "setup: net.mpbal.available_strategies lists the strategies"
}

test_default_load()
{
	local log

	need_unloaded
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
	need_strategies
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

# check_params LABEL NETNS STATS_NS STRATEGY CT_MARK_MASK ROUTE_TABLE_SIZE
# MANAGE_HASH_POLICY: three TEST lines: /sys/module/mpbal/parameters read
# so, a netns NETNS created now gets STRATEGY, and the stats of STATS_NS
# ("" = this netns, "new" = NETNS) say dest_capacity ROUTE_TABLE_SIZE.
check_params()
{
	local label=$1 name=$2 statns=$3 strategy=$4 mask=$5 size=$6 manage=$7 v detail=""

	v=$(cat "$MPBAL_PARAMS/strategy")
	[ "$v" = "$strategy" ] || detail+="strategy=$v "
	v=$(cat "$MPBAL_PARAMS/ct_mark_mask")
	[ "$((v))" -eq $((mask)) ] 2>/dev/null || detail+="ct_mark_mask=$v "
	v=$(cat "$MPBAL_PARAMS/route_table_size")
	[ "$v" = "$size" ] || detail+="route_table_size=$v "
	v=$(cat "$MPBAL_PARAMS/manage_hash_policy")
	[ "$v" = "$manage" ] || detail+="manage_hash_policy=$v "
	[ -z "$detail" ]
	log_test $? "$label: /sys/module/mpbal/parameters show $strategy, $mask, $size, $manage" "$detail"

	new_ns_strategy "$name"
	v=$NEW_NS_STRATEGY
	[ "$v" = "$strategy" ]
	log_test $? "$label: a new netns gets net.mpbal.strategy = $strategy" "got '$v'"

	[ "$statns" = new ] && statns=$NS_PREFIX$name
	v=$(mpbal_stat "$statns" dest_capacity)
	[ "$v" = "$size" ]
	log_test $? "$label: stats say dest_capacity $size" "got '$v'"
	ns_delete "$NS_PREFIX$name"
}

test_default_params()
{
	need_loaded
	check_params "params (defaults)" dflt "" session 0xfc000000 1024 Y
}

test_unload()
{
	local rc=0 detail=""

	need_loaded
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
	need_unloaded
	mpbal_load strategy=packet ct_mark_mask=0xff00 route_table_size=256 manage_hash_policy=0
	log_test $? "insmod strategy=packet ct_mark_mask=0xff00 route_table_size=256 manage_hash_policy=0" \
		"$MPBAL_LOAD_ERR"
	mpbal_loaded || { log_test 1 "good params: reflected" "module not loaded"; return; }
	check_params "good params" good new packet 0xff00 256 N
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
		mpbal_unload
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
	local strat mask="need one contiguous run of set bits"
	local size="need a power of two from 16 to 65536"

	need_strategies
	need_unloaded
	strat="allowed are $MPBAL_STRATEGY_LIST"
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

	need_unloaded
	mpbal_load
	log_test $? "runtime param: insmod with defaults" "$MPBAL_LOAD_ERR"
	ns_create old || { log_test 1 "runtime param: netns created"; return; }

	kmsg_mark
	err=$({ echo bogus >"$MPBAL_PARAMS/strategy"; } 2>&1)
	[ $? -ne 0 ] || { rc=1; detail+="write of bogus succeeded; "; }
	grep -q 'Invalid argument' <<<"$err" || { rc=1; detail+="error: $err; "; }
	v=$(cat "$MPBAL_PARAMS/strategy")
	[ "$v" = session ] || { rc=1; detail+="param now $v; "; }
	# (echo's newline reaches the parameter's set() too, so the message
	# may be split after 'bogus; only its start is checked.)
	log=$(kmsg_since)
	grep -qF "mpbal: invalid strategy 'bogus" <<<"$log" ||
		{ rc=1; detail+="no mpbal line in dmesg; "; }
	log_test $rc "runtime param: writing bogus to parameters/strategy fails with EINVAL, unchanged" "$detail"

	rc=0
	detail=""
	err=$({ echo route >"$MPBAL_PARAMS/strategy"; } 2>&1) || { rc=1; detail+="write failed: $err; "; }
	v=$(cat "$MPBAL_PARAMS/strategy")
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

	need_unloaded
	for i in 1 2 3 4 5; do
		if ! mpbal_load; then
			rc=1
			detail+="insmod $i failed: $MPBAL_LOAD_ERR; "
			break
		fi
		[ -d /proc/sys/net/mpbal ] || { rc=1; detail+="load $i: no sysctls; "; }
		if ! mpbal_unload; then
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

tests_run
mpbal_finish
tests_summary
