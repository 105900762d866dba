#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the gzip'd cpio initramfs for the mpbal test VM.
#
#   mkinitramfs.sh [--module KO] [--kunit KO] [--tool BIN] [--bin PATH].. OUTPUT
#                  [-- COMMAND [ARGS..]]
#
# Contents: the host's bash, iproute2, nft, conntrack, iperf3, ethtool, jq,
# tcpdump, kmod and a few coreutils/util-linux tools with the libraries ldd
# lists; busybox-static applets for everything else (never shadowing a real
# tool); flowgen built static from selftests/tools; the whole selftests/ at
# /selftests; --module at /mpbal/mpbal.ko, --kunit (the KUnit suite module)
# at /mpbal/mpbal_kunit.ko; --tool at /usr/bin/mpbalctl;
# --bin PATH copied to /usr/bin with its libraries. COMMAND is baked in and
# run by /init (from vm/init.sh) with bash; without one /init runs bash.
#
# Deterministic: sorted entries, mtime 0, uid/gid 0, cpio --reproducible,
# gzip -n (-1: the guest unpacks it about as fast, and it packs 1 s faster).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
selftests=$(cd "$here/.." && pwd)

usage()
{
	sed -n '6,7p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

module="" kunit="" tool="" out="" bins=()
while [ $# -gt 0 ]; do
	case $1 in
	--module) module=${2:?}; shift 2 ;;
	--kunit) kunit=${2:?}; shift 2 ;;
	--tool) tool=${2:?}; shift 2 ;;
	--bin) bins+=("${2:?}"); shift 2 ;;
	--) shift; break ;;
	-h | --help) usage ;;
	-*) echo "mkinitramfs: unknown option $1" >&2; usage ;;
	*) [ -z "$out" ] || usage; out=$1; shift ;;
	esac
done
[ -n "$out" ] || usage
cmd=("$@")

for f in ${module:+"$module"} ${kunit:+"$kunit"} ${tool:+"$tool"}; do
	[ -f "$f" ] || { echo "mkinitramfs: $f: no such file" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mpbal-initramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

# Merged /usr like the Debian host, so ldd's /lib/... paths land right.
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,proc,sys,dev,run,tmp,root,mpbal}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
chmod 1777 "$root/tmp"

# copy_file SRC: copy SRC (symlinks resolved) to the same path in the root.
copy_file()
{
	local src=$1 real

	real=$(readlink -f "$src")
	if [ ! -e "$root$real" ]; then
		mkdir -p "$root$(dirname "$real")"
		cp "$real" "$root$real"
	fi
	# Keep the name the caller used (e.g. insmod -> kmod).
	if [ "$src" != "$real" ] && [ ! -e "$root$src" ] && [ ! -L "$root$src" ]; then
		mkdir -p "$root$(dirname "$src")"
		ln -s "$real" "$root$src"
	fi
}

# copy_bin PATH [NAME]: a host binary and the libraries it needs.
declare -A lddone=()
copy_bin()
{
	local src=$1 name=${2:-} lib real

	real=$(readlink -f "$src")
	if [ -n "$name" ]; then
		# --bin: always /usr/bin/NAME (its host path may be under /tmp,
		# which the guest mounts over).
		cp "$real" "$root/usr/bin/$name"
	else
		copy_file "$src"
	fi
	[ -z "${lddone[$real]:-}" ] || return 0
	lddone[$real]=1
	# ldd prints "name => /path (addr)" or "/path (addr)"; static: nothing.
	while read -r lib; do
		copy_file "$lib"
	done < <(ldd "$real" 2>/dev/null | grep -o '/[^ ]*' | sort -u)
}

# flowgen: static, so no libc needed in the guest. Built while we copy.
gcc -O2 -Wall -Wextra -static -o "$work/flowgen" "$selftests/tools/flowgen.c" &
gccpid=$!

# Required tools: failing to find one is an error, not a silent gap.
required=(bash ip tc nft conntrack iperf3 ethtool jq timeout env xargs
	find setsid nsenter unshare flock sysctl kmod insmod rmmod lsmod modinfo)
# Nice to have for debugging.
optional=(tcpdump strace ping nohup nice chroot setpriv)
for t in "${required[@]}"; do
	p=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$t") ||
		{ echo "mkinitramfs: required host tool '$t' not found (make deps)" >&2; exit 1; }
	copy_bin "$p"
done
for t in "${optional[@]}"; do
	p=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$t") || continue
	copy_bin "$p"
done
for b in ${bins[@]+"${bins[@]}"}; do
	[ -x "$b" ] || { echo "mkinitramfs: --bin $b: not an executable" >&2; exit 1; }
	copy_bin "$b" "$(basename "$b")"
done
# /bin/sh is bash: busybox sh would run busybox's own ip/tc applets.
ln -s bash "$root/usr/bin/sh"

# tc's delay distributions and iproute2's tables, if the host has them.
for d in /usr/lib/x86_64-linux-gnu/tc /usr/share/iproute2 /etc/iproute2; do
	[ -d "$d" ] && { mkdir -p "$root$(dirname "$d")"; cp -r "$d" "$root$d"; }
done
for f in /etc/protocols /etc/services /etc/ethertypes; do
	[ -f "$f" ] && cp "$f" "$root$f"
done

# busybox-static for the rest. Skip applets that exist as real tools, and
# applets that exec other programs (busybox prefers its own applets, so
# e.g. busybox `timeout 5 ip` would run busybox ip) or that we never want.
bb=$(command -v busybox) || { echo "mkinitramfs: busybox not found" >&2; exit 1; }
if ldd "$bb" >/dev/null 2>&1; then
	echo "mkinitramfs: $bb is not static (install busybox-static)" >&2
	exit 1
fi
cp "$bb" "$root/usr/bin/busybox"
declare -A skip=()
for a in sh ash init linuxrc watch time start-stop-daemon run-parts crond \
	crontab linux32 linux64 setpriv su sulogin login getty ionice taskset \
	chrt nohup nice chroot env timeout xargs find setsid nsenter unshare \
	flock ssl_client; do
	skip[$a]=1
done
for a in $("$bb" --list); do
	[ -z "${skip[$a]:-}" ] || continue
	[ -e "$root/usr/bin/$a" ] || [ -e "$root/usr/sbin/$a" ] ||
		[ -L "$root/usr/bin/$a" ] || [ -L "$root/usr/sbin/$a" ] ||
		ln -s busybox "$root/usr/bin/$a"
done

wait "$gccpid" || { echo "mkinitramfs: building flowgen failed" >&2; exit 1; }
install -m 755 "$work/flowgen" "$root/usr/bin/flowgen"

cp -r "$selftests" "$root/selftests"
[ -n "$module" ] && cp "$module" "$root/mpbal/mpbal.ko"
[ -n "$kunit" ] && cp "$kunit" "$root/mpbal/mpbal_kunit.ko"
# mpbalctl is a dynamically linked Rust binary: bring its libraries too.
[ -n "$tool" ] && copy_bin "$tool" mpbalctl && chmod 755 "$root/usr/bin/mpbalctl"

printf 'root:x:0:0:root:/root:/bin/bash\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'hosts: files\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' >"$root/etc/hosts"

install -m 755 "$here/init.sh" "$root/init"
# The command, one shell-quoted word per line, read back with eval by /init.
mkdir -p "$root/etc/mpbal"
: >"$root/etc/mpbal/cmd"
for w in ${cmd[@]+"${cmd[@]}"}; do
	printf '%q\n' "$w" >>"$root/etc/mpbal/cmd"
done

# Device nodes for before devtmpfs is mounted (the kernel opens
# /dev/console for init's stdio).
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || true

find "$root" -exec touch -h -d @0 {} +
mkdir -p "$(dirname "$out")"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -1 >"$out.tmp"
mv "$out.tmp" "$out"
