# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers for mpbal guest test scripts (bash), in the style of the kernel's
# tools/testing/selftests/net/forwarding/lib.sh. Source it:
#
#   . "$(dirname "$0")/lib.sh"
#
# Results:    log_test RC "what" [detail], log_skip "what" [why], log_info,
#             tests_summary (last command of a test: its status is the exit).
# Cleanup:    at_exit CMD [ARGS..] runs on EXIT in reverse order; namespaces
#             made with ns_create are deleted after those.
# Namespaces: ns_create NAME.. (real name "$NS_PREFIX$NAME"), ns_delete,
#             veth_pair, addr_add, ns_sysctl, ns_exec.
# Waiting:    wait_until TIMEOUT_S CMD [ARGS..]  (bounded polling).
# Counters:   link_tx_packets NS DEV, link_tx_bytes, link_rx_packets,
#             link_rx_bytes.
# Math:       ratio_within, shares_within, within_percent (integers only).
#
# Nothing here skips a test into a pass: a skip is counted and printed as
# [SKIP], and tests_summary fails when nothing passed.

[ -n "${MPBAL_LIB_SH:-}" ] && return 0
MPBAL_LIB_SH=1

export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH

# Unique per script run, so leftovers of a crashed run never collide.
: "${NS_PREFIX:=mpb$$-}"

TESTS_PASSED=0
TESTS_FAILED=0
TESTS_SKIPPED=0

_MPBAL_AT_EXIT=()
_MPBAL_NETNS=()

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
	exit 1
}

# Prints "N passed, M failed[, K skipped]" and returns non-zero if anything
# failed or nothing passed at all.
tests_summary()
{
	local line="$TESTS_PASSED passed, $TESTS_FAILED failed"

	[ "$TESTS_SKIPPED" -gt 0 ] && line="$line, $TESTS_SKIPPED skipped"
	echo "$line"
	[ "$TESTS_FAILED" -eq 0 ] && [ "$TESTS_PASSED" -gt 0 ]
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

##
## Namespaces and links. NS arguments are real namespace names.
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

# ns_exec NS CMD [ARGS..]
ns_exec()
{
	local ns=$1

	shift
	ip netns exec "$ns" "$@"
}

# veth_pair NS1 DEV1 NS2 DEV2: a veth between two namespaces, both ends up.
veth_pair()
{
	ip -n "$1" link add "$2" type veth peer name "$4" netns "$3" &&
		ip -n "$1" link set "$2" up &&
		ip -n "$3" link set "$4" up
}

# addr_add NS DEV ADDR/PLEN..
addr_add()
{
	local ns=$1 dev=$2 a

	shift 2
	for a in "$@"; do
		ip -n "$ns" addr add "$a" dev "$dev" || return 1
	done
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
## Counters.
##

_link_stat()
{
	ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"
}

link_tx_packets() { _link_stat "$1" "$2" tx_packets; }
link_tx_bytes() { _link_stat "$1" "$2" tx_bytes; }
link_rx_packets() { _link_stat "$1" "$2" rx_packets; }
link_rx_bytes() { _link_stat "$1" "$2" rx_bytes; }

# link_stats NS STAT DEV..: one value per device, space separated.
link_stats()
{
	local ns=$1 stat=$2 dev out=()

	shift 2
	for dev in "$@"; do
		out+=("$(_link_stat "$ns" "$dev" "$stat")") || return 1
	done
	echo "${out[*]}"
}

##
## Integer math for distribution checks. Inputs are non-negative integers;
## weights and expectations should be small (products must fit in 63 bits).
##

_abs() { local v=$1; echo $((v < 0 ? -v : v)); }

# ratio_within A B EXP_A EXP_B TOL_PERCENT: A:B is within TOL percent of
# EXP_A:EXP_B, i.e. |A/B - EA/EB| <= TOL/100 * EA/EB (as router_multipath.sh).
# B == 0 only passes when A == 0 and EXP_A == 0.
ratio_within()
{
	local a=$1 b=$2 ea=$3 eb=$4 tol=$5 lhs rhs

	if [ "$b" -eq 0 ] || [ "$eb" -eq 0 ]; then
		[ "$a" -eq 0 ] && [ "$ea" -eq 0 ]
		return
	fi
	# |A*EB - B*EA| * 100 <= TOL * B * EA, multiplied through by B*EB.
	lhs=$(($(_abs $((a * eb - b * ea))) * 100))
	rhs=$((tol * b * ea))
	[ "$lhs" -le "$rhs" ]
}

# shares_within TOL_PERCENT "V1 V2 .." "E1 E2 ..": each Vi's share of the sum
# is within TOL percent of Ei's share (relative), i.e.
# |Vi/sum(V) - Ei/sum(E)| <= TOL/100 * Ei/sum(E). A zero Ei needs Vi == 0.
shares_within()
{
	local tol=$1 v e sv=0 se=0 i x

	read -r -a v <<<"$2"
	read -r -a e <<<"$3"
	[ ${#v[@]} -eq ${#e[@]} ] || return 2
	for x in "${v[@]}"; do sv=$((sv + x)); done
	for x in "${e[@]}"; do se=$((se + x)); done
	[ "$sv" -gt 0 ] && [ "$se" -gt 0 ] || return 1
	for i in "${!v[@]}"; do
		# |Vi*SE - Ei*SV| * 100 <= TOL * Ei * SV
		x=$(_abs $((v[i] * se - e[i] * sv)))
		[ $((x * 100)) -le $((tol * e[i] * sv)) ] || return 1
	done
}

# within_percent VALUE EXPECTED LO_PCT HI_PCT: EXPECTED*LO% <= VALUE <= EXPECTED*HI%.
within_percent()
{
	local v=$1 exp=$2 lo=$3 hi=$4

	[ $((v * 100)) -ge $((exp * lo)) ] && [ $((v * 100)) -le $((exp * hi)) ]
}

# percent PART WHOLE: integer percentage (0 if WHOLE is 0).
percent()
{
	[ "$2" -gt 0 ] && echo $(($1 * 100 / $2)) || echo 0
}

# require_cmd CMD..: a missing tool is a failure, not a skip.
require_cmd()
{
	local c

	for c in "$@"; do
		command -v "$c" >/dev/null || die "required command '$c' not found"
	done
}
