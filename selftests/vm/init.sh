#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# /init of the mpbal test VM (installed by mkinitramfs.sh). Sets up the
# mounts, runs the baked-in command (/etc/mpbal/cmd) with bash in
# /selftests, reports kernel trouble from the log between markers, prints
# exactly one "MPBAL-VM-EXIT rc=N" line and powers off.
#
# Kernel command line knobs (run.sh sets them):
#   mpbalvm.strict=1       a passing command still fails (rc 97) when the
#                          kernel log shows trouble; 0 only reports it.
#   mpbalvm.kmemleak=1     scan for leaks after the command (if the kernel
#                          has kmemleak) and count reports as trouble.
#   mpbalvm.interactive=1  give the command the console as stdin.
# The guest rc is the command's, except 97 for "passed, but kernel trouble".

export PATH=/usr/bin:/usr/sbin:/bin:/sbin HOME=/root TERM=dumb LC_ALL=C
export MPBAL_SELFTESTS=/selftests
[ -f /mpbal/mpbal.ko ] && export MPBAL_MODULE=/mpbal/mpbal.ko
[ -f /mpbal/mpbal_kunit.ko ] && export MPBAL_KUNIT_MODULE=/mpbal/mpbal_kunit.ko
[ -x /usr/bin/mpbalctl ] && export MPBAL_TOOL=/usr/bin/mpbalctl

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /run/netns /dev/pts /dev/shm
# bash process substitution uses /dev/fd.
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
hostname mpbal-vm
ip link set lo up

strict=1 kmemleak=1 interactive=0
read -r cmdline </proc/cmdline
for arg in $cmdline; do
	case $arg in
	mpbalvm.strict=*) strict=${arg#*=} ;;
	mpbalvm.kmemleak=*) kmemleak=${arg#*=} ;;
	mpbalvm.interactive=*) interactive=${arg#*=} ;;
	esac
done

cmd=()
while IFS= read -r w; do
	eval "cmd+=($w)"
done </etc/mpbal/cmd
[ ${#cmd[@]} -gt 0 ] || cmd=(/bin/bash)

read -r up _ </proc/uptime
echo "vm: kernel $(uname -r), $(nproc) cpus, up ${up}s; running: ${cmd[*]}"
cd /selftests || cd /
start=${EPOCHREALTIME/./}
if [ "$interactive" = 1 ]; then
	"${cmd[@]}"
else
	"${cmd[@]}" </dev/null
fi
rc=$?
end=${EPOCHREALTIME/./}
cd /
echo "vm: command exited rc=$rc after $(((end - start) / 1000)) ms"

# Kernel trouble: what the project rules forbid (sleeping in atomic context,
# lock inversions, leaked refs) and anything that smells of a kernel bug.
pattern='BUG:|WARNING:|Oops|general protection|kernel BUG at|Kernel panic'
pattern+='|refcount_t|unreferenced object|kmemleak: [0-9]+ new suspected'
pattern+='|possible .*deadlock|DEADLOCK|sleeping function called from invalid context'
pattern+='|inconsistent lock state|UBSAN|KASAN|list_(add|del) corruption'
pattern+='|unregister_netdevice: waiting|ref_tracker|soft lockup|hung_task|blocked for more than'

leaks=""
if [ "$kmemleak" = 1 ] && [ -w /sys/kernel/debug/kmemleak ]; then
	start=${EPOCHREALTIME/./}
	echo scan >/sys/kernel/debug/kmemleak 2>/dev/null
	leaks=$(cat /sys/kernel/debug/kmemleak 2>/dev/null)
	end=${EPOCHREALTIME/./}
	echo "vm: kmemleak scan took $(((end - start) / 1000)) ms"
fi
trouble=$(dmesg | grep -E "$pattern")
ntrouble=0
[ -n "$trouble" ] && ntrouble=$(printf '%s\n' "$trouble" | wc -l)
[ -n "$leaks" ] && ntrouble=$((ntrouble + $(printf '%s\n' "$leaks" | grep -c 'unreferenced object')))

echo "MPBAL-VM-KERNEL-TROUBLE-BEGIN"
[ -n "$trouble" ] && printf '%s\n' "$trouble"
[ -n "$leaks" ] && printf '%s\n' "$leaks"
echo "MPBAL-VM-KERNEL-TROUBLE-END count=$ntrouble"
if [ "$ntrouble" -gt 0 ]; then
	# The console runs "quiet": the full splats are only in the log.
	echo "MPBAL-VM-DMESG-BEGIN"
	dmesg
	echo "MPBAL-VM-DMESG-END"
	if [ "$rc" -eq 0 ] && [ "$strict" = 1 ]; then
		echo "vm: the command passed but the kernel log shows trouble: failing"
		rc=97
	fi
fi

echo "MPBAL-VM-EXIT rc=$rc"
reboot -f
# If reboot failed, init exiting panics the kernel and panic=-1 reboots.
sleep 5
exit "$rc"
