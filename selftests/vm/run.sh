#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the mpbal test kernel under QEMU (TCG) and run one command in it.
#
#   run.sh --kernel BZIMAGE [--module KO] [--kunit KO] [--tool BIN] [--bin PATH]..
#          [--timeout SECS] [--mem MB] [--smp N] [--log FILE] [--append ARGS]
#          [--no-kmemleak] [--allow-kernel-trouble] [--interactive] [--icount]
#          [--plugin SPEC] -- COMMAND [ARGS..]
#
# --icount runs the guest under QEMU instruction counting (-icount
# shift=0,sleep=off, single-threaded TCG, one vCPU): guest time advances one
# nanosecond per executed instruction and jumps over idle time, so a rate
# measured in guest time is an exact, repeatable inverse instruction count
# (Documentation/testing.rst, "Deterministic cost").
#
# --plugin SPEC loads a TCG plugin (qemu -plugin SPEC, e.g.
# out/bench/libtbcount.so,outfile=FILE: tools/bench/tbcount.c).
#
# COMMAND runs as root with bash in the guest's /selftests (a copy of this
# selftests/ directory), e.g. `-- /selftests/vm_smoke.sh`. The console is
# streamed to stdout and to the log. The exit status is the guest's: the
# command's status, or 97 if it passed but the kernel log shows trouble
# (WARNING, BUG, lockdep, kmemleak, ...; --allow-kernel-trouble only
# reports it). If the guest never reports (boot failure, panic, hang), the
# exit status is 124 after the message "vm: guest did not finish ...".
#
# Kernel command line: console=ttyS0 quiet panic=-1 oops=panic no_timer_check
# tsc=reliable tsc_early_khz=<host TSC> (see tsc_khz.c). An oops
# panics at once and -no-reboot turns the panic into a QEMU exit, so a
# broken kernel fails fast instead of limping on to the timeout; the oops
# trace is printed on the console (emergency level, shown despite quiet).
# WARNINGs do not panic: /init reports them and fails the run (see above).
#
# TCG only (nested KVM hangs on this machine kind). Works with stdin closed
# or at /dev/null: QEMU's stdin is /dev/null unless --interactive.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

usage()
{
	sed -n '4,9p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

kernel=${MPBAL_KERNEL:-} module="" kunit="" tool="" timeout_s=600 mem=1024 smp=2
log="" append="" kmemleak=1 strict=1 interactive=0 icount=0 plugin="" mkargs=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=${2:?}; shift 2 ;;
	--module) module=${2:?}; shift 2 ;;
	--kunit) kunit=${2:?}; shift 2 ;;
	--tool) tool=${2:?}; shift 2 ;;
	--bin) mkargs+=(--bin "${2:?}"); shift 2 ;;
	--timeout) timeout_s=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--smp) smp=${2:?}; shift 2 ;;
	--log) log=${2:?}; shift 2 ;;
	--append) append=${2:?}; shift 2 ;;
	--no-kmemleak) kmemleak=0; shift ;;
	--allow-kernel-trouble) strict=0; shift ;;
	--interactive) interactive=1; shift ;;
	--icount) icount=1; shift ;;
	--plugin) plugin=${2:?}; shift 2 ;;
	--) shift; break ;;
	-h | --help) usage ;;
	*) echo "vm: unknown argument $1" >&2; usage ;;
	esac
done
[ -n "$kernel" ] || { echo "vm: --kernel BZIMAGE is required" >&2; usage; }
[ -f "$kernel" ] || { echo "vm: kernel $kernel not found" >&2; exit 2; }
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || { echo "vm: bad --timeout $timeout_s" >&2; exit 2; }
[[ $mem =~ ^[1-9][0-9]*$ ]] || { echo "vm: bad --mem $mem" >&2; exit 2; }
[[ $smp =~ ^[1-9][0-9]*$ ]] || { echo "vm: bad --smp $smp" >&2; exit 2; }
[ $# -gt 0 ] || [ "$interactive" = 1 ] || { echo "vm: no command given" >&2; usage; }
[ -n "$module" ] && mkargs+=(--module "$module")
[ -n "$kunit" ] && mkargs+=(--kunit "$kunit")
[ -n "$tool" ] && mkargs+=(--tool "$tool")

# A closed stdin would let QEMU reuse fd 0 for a file it opens.
[ "$interactive" = 1 ] || exec </dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/mpbal-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -z "$log" ]; then
	log=$(mktemp "${TMPDIR:-/tmp}/mpbal-vm-XXXXXX.log")
fi
mkdir -p "$(dirname "$log")"
: >"$log"

t0=$(date +%s%N)
"$here/mkinitramfs.sh" ${mkargs[@]+"${mkargs[@]}"} "$work/initramfs.cpio.gz" -- "$@"
t1=$(date +%s%N)

# no_timer_check: under TCG on a loaded host the IO-APIC timer check can
# miss its ticks and panic the boot ("IO-APIC + timer doesn't work!").
cmdline="console=ttyS0 quiet panic=-1 oops=panic no_timer_check"
# Guest time must follow wall time (tbf rates, timeouts, sleeps). The test
# kernel has no HPET/PM timer, so on a loaded host its TSC calibration fails
# and jiffies drift either way; the host's TSC is the guest's under TCG.
tsc_khz=${MPBAL_TSC_KHZ:-}
# Under -icount the TSC counts guest nanoseconds: 1 GHz.
[ "$icount" = 1 ] && tsc_khz=1000000
if [ -z "$tsc_khz" ] && gcc -O2 -o "$work/tsc_khz" "$here/tsc_khz.c" 2>/dev/null; then
	tsc_khz=$("$work/tsc_khz" || true)
fi
if [[ $tsc_khz =~ ^[1-9][0-9]*$ ]]; then
	cmdline+=" tsc=reliable tsc_early_khz=$tsc_khz"
else
	echo "vm: could not measure the host TSC; guest time may drift" >&2
fi
cmdline+=" mpbalvm.strict=$strict mpbalvm.kmemleak=$kmemleak mpbalvm.interactive=$interactive"
[ -n "$append" ] && cmdline+=" $append"

# One socket per CPU: SeaBIOS's MP table (the kernel has no ACPI) lists only
# the first CPU of each package, so "-smp 2" alone boots one CPU.
accel=(-accel tcg,thread=multi)
if [ "$icount" = 1 ]; then
	accel=(-accel tcg,thread=single -icount shift=0,sleep=off)
	smp=1
fi
qemu=(qemu-system-x86_64 "${accel[@]}" -cpu "${MPBAL_QEMU_CPU:-max}"
	-smp "$smp,sockets=$smp,cores=1,threads=1" -m "$mem"
	-nodefaults -no-user-config -nographic -no-reboot
	-kernel "$kernel" -initrd "$work/initramfs.cpio.gz" -append "$cmdline")
[ -n "$plugin" ] && qemu+=(-plugin "$plugin")
if [ "$interactive" = 1 ]; then
	# Ctrl-A X quits; the guest gets the terminal.
	qemu+=(-serial mon:stdio)
	tmo=(timeout --foreground -k 10 "$timeout_s")
else
	qemu+=(-chardev stdio,id=con,signal=off -serial chardev:con -monitor none)
	tmo=(timeout -k 10 "$timeout_s")
fi

echo "vm: initramfs built in $(((t1 - t0) / 1000000)) ms; booting (timeout ${timeout_s}s, log $log)"
set +e
"${tmo[@]}" "${qemu[@]}" 2>&1 | tee -a "$log"
qrc=${PIPESTATUS[0]}
set -e
t2=$(date +%s%N)
secs=$(((t2 - t1) / 1000000000))

# The last marker counts (the command could print one of its own earlier).
exitline=$(tr -d '\r' <"$log" | grep -a -E '^MPBAL-VM-EXIT rc=[0-9]+$' | tail -n1 || true)
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ] || [ -z "$exitline" ]; then
	if grep -a -q 'Kernel panic' "$log"; then
		echo "vm: kernel panic (the trace is in the log)"
	elif [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		echo "vm: killed after ${timeout_s}s"
	else
		echo "vm: qemu exited with status $qrc without the exit marker"
	fi
	echo "vm: guest did not finish (boot failure, panic or timeout after $timeout_s s); see $log"
	exit 124
fi
rc=${exitline#MPBAL-VM-EXIT rc=}
echo "vm: guest exited rc=$rc after ${secs}s (log $log)"
exit "$rc"
