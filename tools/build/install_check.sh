#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host test of `make install`, staged into a scratch DESTDIR as a package
# build would: needs neither root nor a kernel build (the module goes in as
# DKMS source; mpbalctl is built with cargo if it is not up to date).
# Prints `TEST: ... [ OK ]` / `[FAIL]` lines like check.sh, which counts
# them, and exits 1 if any failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
# Not the default, to see that PREFIX is honoured.
prefix=/opt/mpbal
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$top/tools/mpbalctl/Cargo.toml")
dkms=$dest/usr/src/mpbal-$version
root=$dest$prefix
failed=0

verdict() { # verdict RC DESCRIPTION
	if [ "$1" = 0 ]; then
		printf 'TEST: %-70s [ OK ]\n' "$2"
	else
		printf 'TEST: %-70s [FAIL]\n' "$2"
		failed=1
	fi
}

log=$dest.log
make -C "$top" -s install DESTDIR="$dest" PREFIX="$prefix" >"$log" 2>&1
rc=$?
[ $rc = 0 ] || tail -n 20 "$log"
rm -f "$log"
verdict $rc "make install DESTDIR=... PREFIX=$prefix"

# Everything lands under PREFIX, but for the two paths that must be fixed.
outside=$(cd "$dest" && find . -type f ! -path ".$prefix/*" ! -path "./usr/src/mpbal-$version/*" \
	! -path ./usr/lib/modules-load.d/mpbal.conf ! -path ./usr/lib/systemd/system/mpbald.service)
[ -z "$outside" ] || echo "outside PREFIX: $outside"
[ -z "$outside" ]
verdict $? "nothing outside PREFIX, the DKMS tree, modules-load.d and the unit"

# The DKMS tree: dkms.conf, every module source git tracks, nothing built.
(
	set -e
	# shellcheck disable=SC1091 # dkms sources it, with these variables set
	kernel_source_dir=/lib/modules/6.12.0/build . "$dkms/dkms.conf"
	[ "$PACKAGE_NAME" = mpbal ] && [ "$PACKAGE_VERSION" = "$version" ]
	[ "${BUILT_MODULE_NAME[0]}" = mpbal ] && [ -n "${DEST_MODULE_LOCATION[0]}" ]
	[ "$AUTOINSTALL" = yes ]
	[ "${MAKE[0]}" = "make module KDIR=/lib/modules/6.12.0/build" ]
)
verdict $? "dkms.conf: name, version, module, make module KDIR=..."
missing=$(cd "$top" && git ls-files Kbuild Makefile LICENSE 'include/*.h' 'src/*.rs' 'src/*.[ch]' |
	grep -vE '^src/core/(tests|benches)/' |
	while read -r f; do [ -f "$dkms/$f" ] || echo "$f"; done)
built=$(find "$dkms" -name '*.o' -o -name '*.ko' -o -name 'bindings_generated.rs')
[ -z "$missing$built" ] || echo "DKMS tree: missing: $missing; build outputs: $built"
[ -z "$missing$built" ]
verdict $? "DKMS tree: every module source, no build outputs"

[ -x "$root/sbin/mpbalctl" ] && [ "$("$root/sbin/mpbalctl" --version)" = "mpbalctl $version" ]
verdict $? "sbin/mpbalctl runs (--version)"

# mpbald is the daemon: its help is the daemon's, and a bad file is an
# error with its line and column (exit 2) before anything is touched.
bad=$dest/bad.toml
printf '[uplink.wan1.probe]\ntargets = ["192.0.2.1"]\ndown = "x"\n' >"$bad"
out=$("$root/sbin/mpbald" -f "$bad" 2>&1)
rc=$?
rm -f "$bad"
[ -L "$root/sbin/mpbald" ] && [ $rc = 2 ] && grep -q "bad.toml:3:8: " <<<"$out" &&
	"$root/sbin/mpbald" --help | grep -q "Usage: mpbalctl daemon \[-f FILE\]"
verdict $? "sbin/mpbald is mpbalctl daemon (help; a bad file: exit 2, LINE:COL)"

# The unit: ExecStart and ExecStartPre run installed programs, and
# systemd-analyze verify, on the staged tree, finds nothing wrong.
unit=$dest/usr/lib/systemd/system/mpbald.service
rc=0
grep -qx "ExecStart=$prefix/sbin/mpbald -f /etc/mpbal/mpbal.toml --state-dir /run/mpbal" "$unit" &&
	grep -qx "ExecStartPre=$prefix/sbin/mpbalctl apply --check -f /etc/mpbal/mpbal.toml" "$unit" ||
	rc=1
# verify checks that the commands exist: on a copy whose paths point into
# the staged tree. Its man page is checked with the others below.
sed "s|$prefix/sbin/|$root/sbin/|g" "$unit" >"$dest/mpbald.service"
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$dest/mpbald.service" 2>&1) || rc=1
rm -f "$dest/mpbald.service"
[ -z "$out" ] || { echo "$out"; rc=1; }
[ -f "$root/share/man/man8/mpbalctl-daemon.8" ] || rc=1
verdict $rc "mpbald.service: ExecStart(Pre) installed, systemd-analyze verify clean, man page"

# Every page renders without groff warnings and has its NAME line, and
# every page a page refers to exists.
man8=$root/share/man/man8
pages=("$man8"/*.8)
rc=0
[ -f "$man8/mpbalctl.8" ] && [ -f "$man8/mpbalctl-route-add.8" ] || rc=1
for p in "${pages[@]}"; do
	name=$(basename "$p" .8)
	text=$(MANWIDTH=80 MANPAGER=cat man --warnings -l "$p" 2>"$dest.err") || rc=1
	[ -s "$dest.err" ] && { echo "$name.8: $(cat "$dest.err")"; rc=1; }
	# (a NAME line that wraps is justified: more than one space may separate)
	grep -A1 -x NAME <<<"$text" | grep -qE "^ +$name +- +[A-Z]" ||
		{ echo "$name.8: no NAME line"; rc=1; }
	while read -r ref; do
		[ -f "$man8/${ref%(8)}.8" ] || { echo "$name.8 refers to missing $ref"; rc=1; }
	done < <(grep -oE 'mpbalctl(-[a-z]+)*\(8\)' <<<"$text" | sort -u)
done
rm -f "$dest.err"
verdict $rc "man -l: ${#pages[@]} pages, NAME lines, no warnings, refs exist"

bash_c=$root/share/bash-completion/completions/mpbalctl
bash -n "$bash_c" &&
	bash -c '. "$1" && complete -p mpbalctl' _ "$bash_c" >/dev/null &&
	head -n1 "$root/share/zsh/site-functions/_mpbalctl" | grep -qx '#compdef mpbalctl' &&
	grep -q '^complete -c mpbalctl ' "$root/share/fish/vendor_completions.d/mpbalctl.fish"
verdict $? "completions: bash (sourced, complete -p), zsh, fish"

grep -qx mpbal "$dest/usr/lib/modules-load.d/mpbal.conf"
verdict $? "modules-load.d/mpbal.conf loads mpbal"

# The example names only parameters the module has.
example=$root/share/doc/mpbal/mpbal.conf.example
rc=0
params=$(sed -n 's/^options mpbal //p' "$example" | tr ' ' '\n' | sed 's/=.*//')
[ -n "$params" ] || rc=1
for p in $params; do
	grep -q "^module_param_cb($p," "$top/src/helpers/params.c" || { echo "no parameter $p"; rc=1; }
done
[ -f "$root/share/doc/mpbal/README.md" ] && [ -f "$root/share/doc/mpbal/Documentation/sysctl.rst" ] || rc=1
verdict $rc "doc: README, rst docs, mpbal.conf.example (real params)"

# The configuration example is one mpbalctl apply takes.
example=$root/share/doc/mpbal/mpbal.toml.example
out=$("$root/sbin/mpbalctl" apply --check -f "$example" 2>&1)
rc=$?
[ $rc = 0 ] || echo "$out"
verdict $rc "doc: mpbal.toml.example passes mpbalctl apply --check"

exit $failed
