# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# The library of the mpbal guest test suites (bash), in the shape of the
# kernel's tools/testing/selftests/net/forwarding/lib.sh. A suite:
#
#   ALL_TESTS="
#   	test_one
#   	test_two
#   "
#   . "$(dirname "$0")/lib.sh"       # or testbed.sh, which sources lib.sh
#   mpbal_init CMD..                 # commands it needs; mpbal not loaded
#   setup()  { ...; }                # what the tests share, run once
#   test_one() { ...; log_test $? "what was checked" "detail"; }
#   setup
#   tests_run                        # ${TESTS:-$ALL_TESTS}, in that order
#   mpbal_finish                     # namespaces gone, rmmod, kmemleak wait
#   tests_summary                    # last: its status is the exit status
#
# TESTS="test_two" (environment) runs a subset. A test that needs what an
# earlier one left (a route, a strategy) sets it up itself when run alone.
#
# Results:    log_test RC "what" [detail], log_skip "what" [why], log_info,
#             die, tests_run, tests_summary (kselftest exit codes: 0 pass,
#             1 fail, 4 skip when everything that ran was skipped).
# Cleanup:    at_exit CMD [ARGS..] runs on EXIT in reverse order; namespaces
#             made with ns_create or ns_register are deleted after those.
# Namespaces: ns_create NAME.. (real name "$NS_PREFIX$NAME"), ns_register,
#             ns_delete, ns_delete_all, ns_sysctl, ns_sysctl_get, ns_pin NS
#             (a sleeper, so that ns_read reads /proc/PID/net without
#             spawning a process), ns_read NS FILE, ns_dev_get NS DEV FIELD.
# Waiting:    now_ms, wait_until TIMEOUT_S CMD [ARGS..], wait_pid_exit.
# Jobs:       bg_start VAR TIMEOUT_S NS CMD.. (output in $MPBAL_TMP/VAR.out),
#             bg_wait VAR (its status), bg_out VAR, bg_stop VAR.
# Module:     mpbal_init, mpbal_load [PARAM=VALUE..], mpbal_unload,
#             mpbal_loaded, mpbal_unload_at_exit, mpbal_strategies (the
#             names from net.mpbal.available_strategies), mpbal_finish.
# Kernel log: kmsg_mark, kmsg_since.
# Counters:   kv_parse ARRAY TEXT, mpbal_stats NS (fills ST), mpbal_stat NS
#             NAME, wait_stat NS TIMEOUT_S NAME VALUE, wait_sysctl NS
#             TIMEOUT_S KEY VALUE ("" NS = this netns).
# Writes:     write_raw FILE DATA [WRAPPER..] (one write(2); WRITE_ERR),
#             write_rejected ERROR_RE FILE DATA [WRAPPER..] (it must fail
#             so), read_raw FILE (RAW).
# Privilege:  "${AS_NOBODY[@]}" CMD.., "${NO_NETADMIN[@]}" CMD.., PRIV_TOOL,
#             cap_bit_set HEXMASK BIT, CAP_NET_ADMIN.
# Math:       sum V.., within_percent V EXP LO HI, shares_within "C.." "W.."
#             TOL (TOL "N%" of the total or N absolute), shares_expect.
# Traffic:    flowgen_sent TEXT.
# Tools:      require_cmd CMD.. (a missing one is a failure, not a skip).
#
# Nothing here skips a test into a pass: a skip is counted and printed as
# [SKIP], and tests_summary fails when nothing passed (exit 4 only when
# everything that ran was skipped).

[ -n "${MPBAL_LIB_SH:-}" ] && return 0
MPBAL_LIB_SH=1

export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH

# Unique per script run, so leftovers of a crashed run never collide.
: "${NS_PREFIX:=mpb$$-}"

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

TESTS_PASSED=0
TESTS_FAILED=0
TESTS_SKIPPED=0

_MPBAL_AT_EXIT=()
_MPBAL_NETNS=()

MPBAL_KO=${MPBAL_MODULE:-/mpbal/mpbal.ko}
MPBAL_SYSCTL_DIR=/proc/sys/net/mpbal
MPBAL_PARAMS=/sys/module/mpbal/parameters

##
## Result reporting.
##

# log_test RC DESCRIPTION [DETAIL]: RC 0 is a pass, anything else a failure.
log_test()
{
	local rc=$1 desc=$2 detail=${3:-}

	if [ "$rc" -eq 0 ] 2>/dev/null; then
		printf "TEST: %-60s  [ OK ]\n" "$desc"
		TESTS_PASSED=$((TESTS_PASSED + 1))
	else
		printf "TEST: %-60s  [FAIL]\n" "$desc"
		[ -n "$detail" ] && printf "\t%s\n" "$detail"
		TESTS_FAILED=$((TESTS_FAILED + 1))
	fi
	return 0
}

# log_skip DESCRIPTION [WHY]: counted on its own, never as a pass.
log_skip()
{
	printf "TEST: %-60s  [SKIP]\n" "$1"
	[ -n "${2:-}" ] && printf "\t%s\n" "$2"
	TESTS_SKIPPED=$((TESTS_SKIPPED + 1))
	return 0
}

log_info()
{
	printf "INFO: %s\n" "$*"
}

# A fatal setup error: no point running the remaining tests.
die()
{
	printf "ERROR: %s\n" "$*" >&2
	TESTS_FAILED=$((TESTS_FAILED + 1))
	tests_summary
	exit "$KSFT_FAIL"
}

# tests_run: runs each test function of ${TESTS:-$ALL_TESTS} in that order
# (as forwarding/lib.sh does) and logs how long it took. A name that is not
# in ALL_TESTS is a failure: a typo must not pass.
tests_run()
{
	local t t0 all

	# shellcheck disable=SC2206 # a list of words
	all=(${ALL_TESTS:?the suite sets ALL_TESTS})
	for t in ${TESTS:-${all[*]}}; do
		if [[ " ${all[*]} " != *" $t "* ]] || ! declare -F "$t" >/dev/null; then
			log_test 1 "TESTS: '$t' is a test of this suite" "ALL_TESTS: ${all[*]}"
			continue
		fi
		t0=$(now_ms)
		"$t"
		log_info "$t took $(($(now_ms) - t0)) ms"
	done
}

# Prints "N passed, M failed[, K skipped]" and returns the kselftest code:
# 1 if anything failed or nothing ran, 0 if something passed, 4 if
# everything that ran was skipped.
tests_summary()
{
	local line="$TESTS_PASSED passed, $TESTS_FAILED failed"

	[ "$TESTS_SKIPPED" -gt 0 ] && line="$line, $TESTS_SKIPPED skipped"
	echo "$line"
	if [ "$TESTS_FAILED" -gt 0 ]; then
		return "$KSFT_FAIL"
	elif [ "$TESTS_PASSED" -gt 0 ]; then
		return "$KSFT_PASS"
	elif [ "$TESTS_SKIPPED" -gt 0 ]; then
		return "$KSFT_SKIP"
	fi
	return "$KSFT_FAIL"
}

##
## Cleanup.
##

# at_exit CMD [ARGS..]: run CMD on exit (last registered runs first).
at_exit()
{
	local q

	printf -v q '%q ' "$@"
	_MPBAL_AT_EXIT+=("$q")
}

_mpbal_exit()
{
	local rc=$? i

	set +e
	for ((i = ${#_MPBAL_AT_EXIT[@]} - 1; i >= 0; i--)); do
		eval "${_MPBAL_AT_EXIT[i]}" >/dev/null 2>&1
	done
	_MPBAL_AT_EXIT=()
	ns_delete_all
	return "$rc"
}
trap _mpbal_exit EXIT
# A killed test still cleans up (the EXIT trap runs from exit).
trap 'exit 143' TERM
trap 'exit 130' INT

# Scratch files of this run (job output, flags), removed on exit.
MPBAL_TMP=$(mktemp -d /tmp/mpbal-test.XXXXXX)
at_exit rm -rf "$MPBAL_TMP"

##
## Namespaces. NS arguments are real namespace names.
##

# ns_create NAME..: creates "$NS_PREFIX$NAME" with lo up and sets the
# variable NS_<NAME> (non-alnum mapped to _) to the real name.
ns_create()
{
	local n ns var

	for n in "$@"; do
		ns=$NS_PREFIX$n
		ip netns add "$ns" || return 1
		_MPBAL_NETNS+=("$ns")
		ip -n "$ns" link set lo up || return 1
		var=NS_${n//[^A-Za-z0-9_]/_}
		printf -v "$var" '%s' "$ns"
		export "${var?}"
	done
}

# ns_register NS..: delete these (real names) on exit, like ns_create does.
ns_register()
{
	_MPBAL_NETNS+=("$@")
}

# ns_delete NS..: kill what runs in them and delete them (one `ip` spawn).
ns_delete()
{
	local ns p i cmds=""

	[ $# -gt 0 ] || return 0
	for ns in "$@"; do
		[ -e "/run/netns/$ns" ] || continue
		# Same nsfs inode, found with bash's -ef: no process per check.
		for p in /proc/[0-9]*; do
			[ "${p#/proc/}" != $$ ] && [ "$p/ns/net" -ef "/run/netns/$ns" ] &&
				kill -9 "${p#/proc/}" 2>/dev/null
		done
		cmds+="netns del $ns"$'\n'
	done
	[ -n "$cmds" ] && ip -force -batch - <<<"$cmds" 2>/dev/null
	for ns in "$@"; do
		for i in "${!_MPBAL_NETNS[@]}"; do
			[ "${_MPBAL_NETNS[i]}" = "$ns" ] && unset '_MPBAL_NETNS[i]'
		done
	done
	return 0
}

ns_delete_all()
{
	local all=("${_MPBAL_NETNS[@]}")

	[ ${#all[@]} -gt 0 ] && ns_delete "${all[@]}"
	return 0
}

# ns_sysctl NS KEY=VALUE..
ns_sysctl()
{
	local ns=$1

	shift
	ip netns exec "$ns" sysctl -qw "$@" >/dev/null
}

# ns_sysctl_get NS KEY
ns_sysctl_get()
{
	ip netns exec "$1" sysctl -n "$2"
}

declare -A _NS_PIN=()

# ns_pin NS: start a sleeper in NS (killed with the netns by ns_delete).
ns_pin()
{
	ip netns exec "$1" sleep 100000 &
	_NS_PIN[$1]=$!
	# It has entered the netns once its /proc/PID/ns/net is NS's.
	wait_until 10 test "/proc/${_NS_PIN[$1]}/ns/net" -ef "/run/netns/$1"
}

# ns_read NS FILE: NS_LINES = the lines of FILE (a /proc path) as seen from NS.
# No process is spawned (forks are slow under TCG) for this netns ("") or a
# pinned one: bash reads /proc/PID/net/... itself.
NS_LINES=()
ns_read()
{
	local p

	NS_LINES=()
	if [ -z "$1" ]; then
		p=/proc/self
	elif [ -n "${_NS_PIN[$1]:-}" ] && [ -d "/proc/${_NS_PIN[$1]}" ]; then
		p=/proc/${_NS_PIN[$1]}
	else
		mapfile -t NS_LINES < <(ip netns exec "$1" cat "$2" 2>/dev/null)
		[ ${#NS_LINES[@]} -gt 0 ]
		return
	fi
	[ -r "$p/${2#/proc/}" ] || return 1
	mapfile -t NS_LINES <"$p/${2#/proc/}"
}

# ns_dev_get NS DEV FIELD: DEV_STAT = a counter from NS's /proc/net/dev;
# FIELD is rx_bytes rx_packets .. tx_bytes tx_packets (the file's order).
DEV_STAT=""
ns_dev_get()
{
	local line name f i
	local cols=(rx_bytes rx_packets rx_errs rx_drop rx_fifo rx_frame
		rx_compressed rx_multicast tx_bytes tx_packets)

	DEV_STAT=""
	for i in "${!cols[@]}"; do
		[ "${cols[i]}" = "$3" ] && break
	done
	[ "${cols[i]}" = "$3" ] || return 2
	ns_read "$1" /proc/net/dev || return 1
	for line in "${NS_LINES[@]}"; do
		name=${line%%:*}
		name=${name// /}
		[ "$name" = "$2" ] || continue
		read -r -a f <<<"${line#*:}"
		DEV_STAT=${f[i]}
		return 0
	done
	return 1
}

##
## Waiting and timing.
##

# Monotonic-enough milliseconds (bash 5 EPOCHREALTIME; no fork).
now_ms()
{
	local t=${EPOCHREALTIME/./}

	echo $((t / 1000))
}

# wait_until TIMEOUT_S CMD [ARGS..]: poll CMD every 100 ms until it succeeds;
# returns 1 after TIMEOUT_S seconds.
wait_until()
{
	local timeout=$1 deadline

	shift
	deadline=$(($(now_ms) + timeout * 1000))
	while ! "$@"; do
		[ "$(now_ms)" -ge "$deadline" ] && return 1
		sleep 0.1
	done
	return 0
}

# wait_pid_exit TIMEOUT_S PID: bounded wait for a background job to end.
wait_pid_exit()
{
	wait_until "$1" eval "! kill -0 $2 2>/dev/null"
}

##
## Background jobs.
##

# bg_start VAR TIMEOUT_S NS CMD..: CMD in NS in the background (killed
# after TIMEOUT_S), output in $MPBAL_TMP/VAR.out; VAR is set to the pid.
bg_start()
{
	local var=$1 t=$2 ns=$3

	shift 3
	timeout "$t" ip netns exec "$ns" "$@" >"$MPBAL_TMP/$var.out" 2>&1 &
	printf -v "$var" '%s' $!
}

# bg_wait VAR: exit status of the job started with bg_start VAR.
bg_wait()
{
	local pid=${!1}

	wait "$pid"
}

# bg_out VAR: what the job printed.
bg_out()
{
	cat "$MPBAL_TMP/$1.out" 2>/dev/null
}

# bg_stop VAR: kill the job and reap it.
bg_stop()
{
	kill "${!1}" 2>/dev/null
	bg_wait "$1"
}

##
## The module.
##

mpbal_loaded()
{
	grep -q '^mpbal ' /proc/modules
}

_mpbal_unload_if_loaded()
{
	# The KUnit module uses mpbal.ko: it goes first.
	grep -q '^mpbal_kunit ' /proc/modules && rmmod mpbal_kunit
	mpbal_loaded && rmmod mpbal
	return 0
}

# mpbal_unload_at_exit: whatever a test did, the module is not left loaded
# (registered once; mpbal_load does it).
mpbal_unload_at_exit()
{
	[ -n "${_MPBAL_UNLOAD_SET:-}" ] && return 0
	_MPBAL_UNLOAD_SET=1
	at_exit _mpbal_unload_if_loaded
}

# mpbal_load [PARAM=VALUE..]: insmod the module under test; stderr of a
# failure in MPBAL_LOAD_ERR. It is unloaded on exit.
mpbal_load()
{
	mpbal_unload_at_exit
	MPBAL_LOAD_ERR=$(insmod "$MPBAL_KO" "$@" 2>&1)
}

mpbal_unload()
{
	rmmod mpbal
}

# mpbal_init CMD..: the preamble of a suite that loads mpbal itself: the
# commands it needs (and insmod, rmmod) are there, so is the module file,
# and mpbal is not loaded yet.
mpbal_init()
{
	require_cmd insmod rmmod "$@"
	[ -f "$MPBAL_KO" ] || die "no module at $MPBAL_KO (run.sh --module)"
	mpbal_loaded && die "mpbal is already loaded before the test"
	mpbal_unload_at_exit
}

# mpbal_strategies: MPBAL_STRATEGIES = the strategy names the loaded module
# knows (net.mpbal.available_strategies, in id order), MPBAL_STRATEGY_LIST
# the same joined with ", " as the module's and mpbalctl's messages print
# them. Fails if the file is missing or empty.
MPBAL_STRATEGIES=()
MPBAL_STRATEGY_LIST=""
mpbal_strategies()
{
	local line=""

	MPBAL_STRATEGIES=()
	MPBAL_STRATEGY_LIST=""
	read -r line <"$MPBAL_SYSCTL_DIR/available_strategies" || return 1
	read -r -a MPBAL_STRATEGIES <<<"$line"
	[ ${#MPBAL_STRATEGIES[@]} -gt 0 ] || return 1
	printf -v MPBAL_STRATEGY_LIST '%s, ' "${MPBAL_STRATEGIES[@]}"
	MPBAL_STRATEGY_LIST=${MPBAL_STRATEGY_LIST%, }
}

# mpbal_finish: the end of a suite that loads mpbal: its namespaces are
# deleted and, if a test left the module loaded, it is unloaded (a TEST
# line). Then 5 s pass: kmemleak, which the harness runs after the suite,
# only reports objects older than that.
mpbal_finish()
{
	ns_delete_all
	if mpbal_loaded; then
		mpbal_unload
		log_test $? "rmmod at the end"
	fi
	sleep 5
}

##
## Kernel log.
##

_KMSG_N=0
KMSG_MARK=""

# kmsg_mark: put a unique marker line into the kernel log.
kmsg_mark()
{
	_KMSG_N=$((_KMSG_N + 1))
	KMSG_MARK="mpbal-selftest-mark $$.$_KMSG_N"
	echo "$KMSG_MARK" >/dev/kmsg
}

# kmsg_since: the kernel log lines after the last kmsg_mark.
kmsg_since()
{
	dmesg | awk -v m="$KMSG_MARK" 'found { print } index($0, m) { found = 1 }'
}

##
## /proc/net/mpbal counters.
##

# kv_parse ARRAY TEXT: ARRAY[name]=value for every "name value" line of
# TEXT; blank and "#" lines are left out. No subshell (forks are slow
# under TCG).
kv_parse()
{
	local -n _kv=$1
	local k v

	_kv=()
	while read -r k v; do
		[ -z "$k" ] || [ "${k#\#}" != "$k" ] && continue
		# shellcheck disable=SC2004 # an associative array
		_kv[$k]=$v
	done <<<"$2"
}

# mpbal_stats NS: fills ST[name]=value from NS's /proc/net/mpbal/stats.
declare -A ST=()
mpbal_stats()
{
	local text

	ST=()
	ns_read "$1" /proc/net/mpbal/stats || return 1
	printf -v text '%s\n' "${NS_LINES[@]}"
	kv_parse ST "$text"
}

# mpbal_stat NS NAME: one value (prints it).
mpbal_stat()
{
	mpbal_stats "$1" || return 1
	echo "${ST[$2]:-}"
}

_stat_is()
{
	[ "$(mpbal_stat "$1" "$2")" = "$3" ]
}

# wait_stat NS TIMEOUT_S NAME VALUE: until stats NAME reads VALUE.
wait_stat()
{
	wait_until "$2" _stat_is "$1" "$3" "$4"
}

_sysctl_is()
{
	local v

	if [ -z "$1" ]; then
		v=$(sysctl -n "$2" 2>/dev/null)
	else
		v=$(ip netns exec "$1" sysctl -n "$2" 2>/dev/null)
	fi
	[ "$v" = "$3" ]
}

# wait_sysctl NS TIMEOUT_S KEY VALUE ("" NS = this netns).
wait_sysctl()
{
	wait_until "$2" _sysctl_is "$1" "$3" "$4"
}

##
## Writes and privileges.
##

# write_raw FILE DATA [WRAPPER..]: open FILE for writing and write DATA in
# one write(2) (bash's printf flushes once). WRAPPER (e.g. "${AS_NOBODY[@]}"
# or "ip netns exec NS") runs the writer in another process. Returns the
# writer's status and sets WRITE_ERR to its error message, e.g.
# "bash: ... write error: Invalid argument" ("" on success).
write_raw()
{
	local file=$1 data=$2

	shift 2
	if [ $# -eq 0 ]; then
		WRITE_ERR=$({ printf '%s' "$data" >"$file"; } 2>&1)
	else
		# shellcheck disable=SC2016 # expanded by the inner bash
		WRITE_ERR=$("$@" bash -c 'printf "%s" "$2" >"$1"' _ "$file" "$data" 2>&1)
	fi
}

# write_rejected ERROR_RE FILE DATA [WRAPPER..]: write_raw FILE DATA must
# fail with an error matching ERROR_RE (grep -E). Else it returns 1 and
# REJECT_WHY says what happened ("write succeeded" or "error: ...").
write_rejected()
{
	local re=$1

	shift
	REJECT_WHY=""
	if write_raw "$@"; then
		REJECT_WHY="write succeeded"
	elif ! grep -qE "$re" <<<"$WRITE_ERR"; then
		REJECT_WHY="error: $WRITE_ERR"
	fi
	[ -z "$REJECT_WHY" ]
}

# read_raw FILE: RAW = the exact content (trailing newlines kept).
read_raw()
{
	RAW=""
	IFS= read -r -d '' RAW <"$1"
	[ -n "$RAW" ]
}

# Command prefixes for other credentials:
#   AS_NOBODY:  uid/gid 65534, no supplementary groups, no capabilities;
#   NO_NETADMIN: root (kernel uid 0) without CAP_NET_ADMIN over the netns.
# With util-linux setpriv (as the tests intend):
#   setpriv --reuid=65534 --regid=65534 --clear-groups
#   setpriv --inh-caps=-net_admin --ambient-caps=-net_admin --bounding-set=-net_admin
# The guest image may lack util-linux setpriv (vm/mkinitramfs.sh does not
# ship it and busybox's setpriv has no --reuid/--bounding-set; pass
# run.sh --bin /usr/bin/setpriv). Then util-linux unshare makes the same
# credentials:
#   unshare --setuid 65534 --setgid 65534 (setgroups(0) too; the uid change
#       drops every capability, as with setpriv --reuid);
#   unshare -U: a child user namespace without a uid map. The kernel uid
#       stays 0 (file modes grant root's access) but no capability is held
#       over the init user namespace, which owns the netns.
# PRIV_TOOL says which one is used.
if command -v setpriv >/dev/null; then
	PRIV_TOOL=setpriv
	AS_NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
	NO_NETADMIN=(setpriv --inh-caps=-net_admin --ambient-caps=-net_admin
		--bounding-set=-net_admin --)
else
	PRIV_TOOL=unshare
	AS_NOBODY=(unshare --setuid 65534 --setgid 65534 --)
	NO_NETADMIN=(unshare -U --)
fi

# cap_bit_set HEXMASK BIT
cap_bit_set()
{
	[ $(((16#$1 >> $2) & 1)) -eq 1 ]
}

CAP_NET_ADMIN=12

##
## Integer math for distribution checks. Inputs are non-negative integers;
## weights should be small (products must fit in 63 bits).
##

sum()
{
	local s=0 x

	for x in "$@"; do s=$((s + x)); done
	echo "$s"
}

# within_percent VALUE EXPECTED LO_PCT HI_PCT: EXPECTED*LO% <= VALUE <= EXPECTED*HI%.
within_percent()
{
	local v=$1 exp=$2 lo=$3 hi=$4

	[ $((v * 100)) -ge $((exp * lo)) ] && [ $((v * 100)) -le $((exp * hi)) ]
}

# shares_within "C1 C2 .." "W1 W2 .." TOL: every count Ci is within TOL of
# its weighted share T*Wi/W of the total (T = sum of C, W = sum of weights):
# |Ci - T*Wi/W| <= T*N/100 for TOL "N%", <= N for TOL N. T must be > 0.
shares_within()
{
	local c w sc=0 sw=0 i x lim

	read -r -a c <<<"$1"
	read -r -a w <<<"$2"
	[ ${#c[@]} -eq ${#w[@]} ] || return 2
	for x in "${c[@]}"; do sc=$((sc + x)); done
	for x in "${w[@]}"; do sw=$((sw + x)); done
	[ "$sc" -gt 0 ] || return 1
	# Both sides multiplied by 100 * W.
	case $3 in
	*%) lim=$((sc * ${3%\%} * sw)) ;;
	*) lim=$(($3 * sw * 100)) ;;
	esac
	for i in "${!c[@]}"; do
		x=$((c[i] * sw - sc * w[i]))
		[ $((${x#-} * 100)) -le "$lim" ] || return 1
	done
}

# shares_expect "W.." T: the exact shares of T, "e1 e2 .." (rounded down).
shares_expect()
{
	local w sw=0 x out=()

	read -r -a w <<<"$1"
	for x in "${w[@]}"; do sw=$((sw + x)); done
	for x in "${w[@]}"; do out+=($(($2 * x / sw))); done
	echo "${out[*]}"
}

##
## Traffic and tools.
##

# flowgen_sent TEXT: the sent= (udp) or ok= (tcp) figure of a flowgen
# summary line, 0 if none.
flowgen_sent()
{
	if [[ $1 =~ sent=([0-9]+) ]] || [[ $1 =~ ok=([0-9]+) ]]; then
		echo "${BASH_REMATCH[1]}"
	else
		echo 0
	fi
}

# require_cmd CMD..: a missing tool is a failure, not a skip.
require_cmd()
{
	local c

	for c in "$@"; do
		command -v "$c" >/dev/null || die "required command '$c' not found"
	done
}
