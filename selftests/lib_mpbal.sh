# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers shared by the mpbal_*.sh guest tests (load, sysctl, routes, netns).
# Source it after lib.sh:
#
#   . "$here/lib.sh"
#   . "$here/lib_mpbal.sh"
#
# Module:     mpbal_load [PARAM=VALUE..], mpbal_unload, mpbal_loaded,
#             mpbal_cleanup_at_exit (rmmod on exit if still loaded).
# Kernel log: kmsg_mark (a marker line in the kernel log), kmsg_since (the
#             lines after the last marker).
# Files:      mpbal_stats NS (fills the associative array ST from
#             /proc/net/mpbal/stats of NS, "" = this netns), mpbal_stat NS
#             NAME, mpbal_uplinks NS (fills UL_PACKETS/UL_BYTES by device),
#             ns_dev_get NS DEV FIELD (DEV_STAT from /proc/net/dev),
#             ns_read/ns_cat NS FILE, ns_pin NS (a sleeper in NS so that its
#             /proc/PID/net is read without spawning a process per read).
# Writes:     write_raw FILE DATA [WRAPPER..]: one write(2) of DATA exactly;
#             sets WRITE_ERR to the error text ("" on success). read_raw.
# Privilege:  "${AS_NOBODY[@]}" CMD.., "${NO_NETADMIN[@]}" CMD.. (setpriv
#             when the guest has it, else util-linux unshare; see below).
# Waiting:    wait_stat NS TIMEOUT NAME VALUE, wait_sysctl NS TIMEOUT KEY VALUE.

[ -n "${MPBAL_LIB_MPBAL_SH:-}" ] && return 0
MPBAL_LIB_MPBAL_SH=1

MPBAL_KO=${MPBAL_MODULE:-/mpbal/mpbal.ko}
MPBAL_SYSCTL_DIR=/proc/sys/net/mpbal
MPBAL_PARAMS=/sys/module/mpbal/parameters
MPBAL_STRATEGIES=(route packet session bandwidth)

##
## Module.
##

mpbal_loaded()
{
	grep -q '^mpbal ' /proc/modules
}

# mpbal_load [PARAM=VALUE..]: insmod; stderr of a failure in MPBAL_LOAD_ERR.
mpbal_load()
{
	MPBAL_LOAD_ERR=$(insmod "$MPBAL_KO" "$@" 2>&1)
}

mpbal_unload()
{
	rmmod mpbal
}

_mpbal_unload_if_loaded()
{
	mpbal_loaded && rmmod mpbal
	return 0
}

# Registered once: whatever a test did, the module is not left loaded.
mpbal_cleanup_at_exit()
{
	[ -n "${_MPBAL_CLEANUP_SET:-}" ] && return 0
	_MPBAL_CLEANUP_SET=1
	at_exit _mpbal_unload_if_loaded
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
## /proc/net/mpbal and friends.
##

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

# ns_cat NS FILE: print it.
ns_cat()
{
	ns_read "$@" || return 1
	printf '%s\n' "${NS_LINES[@]}"
}

# mpbal_stats NS: fills ST[name]=value from NS's /proc/net/mpbal/stats.
declare -A ST=()
mpbal_stats()
{
	local l k

	ST=()
	ns_read "$1" /proc/net/mpbal/stats || return 1
	for l in "${NS_LINES[@]}"; do
		k=${l%% *}
		[ -z "$k" ] || [ "${k#\#}" != "$k" ] && continue
		ST[$k]=${l#* }
	done
	return 0
}

# mpbal_stat NS NAME: one value (prints it).
mpbal_stat()
{
	mpbal_stats "$1" || return 1
	echo "${ST[$2]:-}"
}

# mpbal_uplinks NS: fills UL_PACKETS[dev], UL_BYTES[dev], UL_DEVS (in order).
declare -A UL_PACKETS=() UL_BYTES=()
UL_DEVS=()
mpbal_uplinks()
{
	local header row cols i dev
	local -A idx=()

	UL_PACKETS=()
	UL_BYTES=()
	UL_DEVS=()
	ns_read "$1" /proc/net/mpbal/uplinks || return 1
	read -r -a header <<<"${NS_LINES[0]}"
	for i in "${!header[@]}"; do idx[${header[i]}]=$i; done
	for row in "${NS_LINES[@]:1}"; do
		[ -n "$row" ] || continue
		read -r -a cols <<<"$row"
		dev=${cols[${idx[dev]}]}
		UL_DEVS+=("$dev")
		UL_PACKETS[$dev]=${cols[${idx[packets]}]}
		UL_BYTES[$dev]=${cols[${idx[bytes]}]}
	done
	return 0
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

# ns_dev_get NS DEV FIELD: DEV_STAT = a counter from NS's /proc/net/dev;
# FIELD is rx_bytes rx_packets .. tx_bytes tx_packets (the file's order).
# ns_dev_stat prints it instead.
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

ns_dev_stat()
{
	ns_dev_get "$@" && echo "$DEV_STAT"
}

##
## Misc.
##

sum() { local s=0 x; for x in "$@"; do s=$((s + x)); done; echo "$s"; }
