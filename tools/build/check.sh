#!/usr/bin/env bash
# make check: host tests, builds, then every guest suite in its own VM.
#
# Prints `TEST: ... [ OK ]` / `[FAIL]` / `[SKIP]` lines (host cargo tests are
# summed per crate, guest tests are the suites' own lines plus one "kernel
# log clean" line per VM) and ends with one line `N passed, M failed` (and
# `, K skipped` if any). Exits non-zero on any failure, including a guest
# that does not boot or hangs (run.sh bounds every VM). Logs go to
# out/check/.
#
# Environment (the Makefile's SUITES=, TESTS= and HOST= set these):
#   MPBAL_SUITES="mpbal_sysctl .."  only these guest suites (default: all)
#   MPBAL_TESTS="test_numeric .."   only these tests of the one suite in
#                                   MPBAL_SUITES (the suite's TESTS=)
#   MPBAL_HOST_TESTS=0              skip the host tests (cargo test, fmt,
#                                   clippy, make install); the builds always run
#   MPBAL_VM_TIMEOUT=900            seconds per VM
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=$top/out/check
rm -rf "$out"
mkdir -p "$out"

# Guest suites, foundation first. Each boots its own VM.
SUITES=${MPBAL_SUITES:-"vm_smoke mpbal_load mpbal_sysctl mpbal_eqroutes mpbal_netns
	mpbal_strategy_packet mpbal_strategy_route mpbal_strategy_session
	mpbal_strategy_bandwidth mpbal_strategy_headroom mpbal_strategy_flowlet
	mpbal_stock mpbal_local mpbal_switch mpbal_tiers mpbal_daemon mpbal_router mpbal_state mpbal_thesis"}
TESTS=${MPBAL_TESTS:-}
HOST_TESTS=${MPBAL_HOST_TESTS:-1}
VM_TIMEOUT=${MPBAL_VM_TIMEOUT:-900}

# shellcheck disable=SC2206 # a list of words
suites=($SUITES)
for s in "${suites[@]}"; do
	[ -f "selftests/$s.sh" ] || { echo "check: no guest suite selftests/$s.sh" >&2; exit 2; }
done
if [ -n "$TESTS" ] && [ ${#suites[@]} -ne 1 ]; then
	echo "check: TESTS=\"$TESTS\" needs exactly one suite in SUITES (got ${#suites[@]})" >&2
	exit 2
fi

passed=0
failed=0
skipped=0
failures=() # repeated at the end: CI shows only the tail of the output
report() { # report RC DESCRIPTION
	if [ "$1" = 0 ]; then
		printf 'TEST: %-70s [ OK ]\n' "$2"
		passed=$((passed + 1))
	else
		printf 'TEST: %-70s [FAIL]\n' "$2"
		failed=$((failed + 1))
		failures+=("$2")
	fi
}

# cargo test: every test counts; one line per crate says where they came from.
cargo_tests() { # cargo_tests DIR
	local dir=$1 log=$out/cargo-test-${1//\//_}.log rc p f
	(cd "$dir" && cargo test --locked) >"$log" 2>&1
	rc=$?
	p=$(awk '/^test result:/ {s += $4} END {print s + 0}' "$log")
	f=$(awk '/^test result:/ {s += $6} END {print s + 0}' "$log")
	grep -E '^test .* FAILED$|^---- ' "$log" | head -n 20
	while read -r t; do failures+=("host: cargo test $dir: $t"); done \
		< <(sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$log" | head -n 20)
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1 # did not build or crashed
		tail -n 30 "$log"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	printf 'TEST: %-70s [%s]\n' "host: cargo test $dir ($p passed, $f failed)" \
		"$([ "$f" = 0 ] && echo ' OK ' || echo FAIL)"
}

host_tests() {
	local dir ksrc rc

	cargo_tests src/core
	cargo_tests tools/mpbalctl
	for dir in src/core tools/mpbalctl; do
		(cd "$dir" && cargo fmt --check) >"$out/fmt.log" 2>&1
		report $? "host: rustfmt clean: $dir"
		(cd "$dir" && cargo clippy --locked --all-targets -- -D warnings) >"$out/clippy.log" 2>&1
		rc=$?
		[ $rc = 0 ] || tail -n 20 "$out/clippy.log"
		report $rc "host: clippy clean: $dir"
	done
	# make install into a scratch DESTDIR: one verdict per check of the script.
	bash tools/build/install_check.sh >"$out/install-check.log" 2>&1
	rc=$?
	grep -vE '^TEST: ' "$out/install-check.log" | tail -n 20
	while read -r r d; do report "$r" "host: install: $d"; done < <(sed -n \
		-e 's/^TEST: \(.*[^ ]\) *\[ OK \]$/0 \1/p' \
		-e 's/^TEST: \(.*[^ ]\) *\[FAIL\]$/1 \1/p' "$out/install-check.log")
	if [ $rc != 0 ] && ! grep -q '^TEST: .*\[FAIL\]$' "$out/install-check.log"; then
		report $rc "host: install: tools/build/install_check.sh (exit $rc)"
	fi
	ksrc=$(ls -d "${MPBAL_CACHE:-$HOME/.cache/mpbal}"/src/linux-* 2>/dev/null | head -n1)
	if [ -n "$ksrc" ]; then
		rustfmt --check --edition 2021 --config-path "$ksrc/.rustfmt.toml" src/mpbal_main.rs \
			src/kunit/mpbal_kunit.rs >"$out/rustfmt-module.log" 2>&1
		report $? "host: rustfmt clean: module crates (kernel .rustfmt.toml)"
	fi
}

if [ "$HOST_TESTS" = 0 ]; then
	echo "== host tests: skipped (HOST=0)"
else
	echo "== host tests"
	host_tests
fi

echo "== build"
kbuild=$(bash tools/build/kernel.sh 2>"$out/kernel.log" | tail -n1)
rc=$?
[ $rc = 0 ] || tail -n 30 "$out/kernel.log"
report $rc "build: test kernel (cached in ~/.cache/mpbal)"
KDIR="$kbuild" make -s module CLIPPY=1 >"$out/module.log" 2>&1
rc=$?
# Warnings in our own sources count: the module must build clean.
if [ $rc = 0 ] && grep -E 'warning|error' "$out/module.log" | grep -q "$top"; then
	grep -E 'warning|error' "$out/module.log" | head -n 10
	rc=1
fi
report $rc "build: mpbal.ko (Rust + C helpers + bindgen), no compiler or clippy warnings"
(cd tools/mpbalctl && cargo build --release --locked) >"$out/tool.log" 2>&1
report $? "build: mpbalctl"

bzimage=$kbuild/arch/x86/boot/bzImage
[ -f mpbal_kunit.ko ]
report $? "build: mpbal_kunit.ko (the KUnit suite, a module of its own)"
if [ -f "$bzimage" ] && [ -f mpbal.ko ] && [ -f mpbal_kunit.ko ] &&
	[ -x tools/mpbalctl/target/release/mpbalctl ]; then
	for s in "${suites[@]}"; do
		echo "== guest: $s${TESTS:+ (TESTS=$TESTS)}"
		log=$out/$s.log
		cmd=("/selftests/$s.sh")
		# A suite may ask for more guest memory: "# vm-mem: MB".
		mem=$(sed -n 's/^# vm-mem: \([1-9][0-9]*\)$/\1/p' "selftests/$s.sh")
		# The guest has coreutils env (vm/mkinitramfs.sh requires it).
		[ -n "$TESTS" ] && cmd=(env "TESTS=$TESTS" "${cmd[@]}")
		bash selftests/vm/run.sh --kernel "$bzimage" --module mpbal.ko --kunit mpbal_kunit.ko \
			--tool tools/mpbalctl/target/release/mpbalctl \
			--timeout "$VM_TIMEOUT" --log "$log.console" ${mem:+--mem "$mem"} \
			-- "${cmd[@]}" </dev/null >"$log" 2>&1
		rc=$?
		# The suite's own verdicts.
		grep -aE '^TEST: ' "$log" | sed "s/^TEST: /TEST: $s: /"
		while read -r t; do failures+=("$s: $t"); done \
			< <(grep -aE '^TEST: .*\[FAIL\]' "$log" | sed 's/^TEST: //; s/ *\[FAIL\]$//')
		p=$(grep -acE '^TEST: .*\[ OK \]' "$log")
		f=$(grep -acE '^TEST: .*\[FAIL\]' "$log")
		k=$(grep -acE '^TEST: .*\[SKIP\]' "$log")
		passed=$((passed + p))
		failed=$((failed + f))
		skipped=$((skipped + k))
		# kselftest 4: everything that ran was skipped (counted as
		# skipped, not passed). /init fails a run on kernel trouble only
		# when the suite passed; the count is in the log.
		exited=$rc
		if [ "$rc" = 4 ]; then
			if [ "$f" != 0 ] || [ "$k" = 0 ]; then
				rc=99 # not a genuine all-skip
			elif ! grep -aq 'MPBAL-VM-KERNEL-TROUBLE-END count=0' "$log"; then
				rc=97
			fi
		fi
		case $rc in
		0 | 4) report 0 "$s: kernel log clean (no WARNING/lockdep/kmemleak/refcount)" ;;
		97) grep -a -A 40 'MPBAL-VM-KERNEL-TROUBLE-BEGIN' "$log" | head -n 40
			report 1 "$s: kernel log clean (no WARNING/lockdep/kmemleak/refcount)" ;;
		124) tail -n 40 "$log"
			report 1 "$s: guest booted and finished within ${VM_TIMEOUT}s" ;;
		*) if [ "$f" = 0 ]; then
				tail -n 30 "$log"
				report 1 "$s: suite exited $exited"
			fi ;;
		esac
	done
else
	report 1 "guest: nothing to boot (build failed)"
fi

if [ ${#failures[@]} -gt 0 ]; then
	# A reader may see only the tail of this output: the failing suites'
	# lines just before their first failure, then every failure by name.
	for s in "${suites[@]}"; do
		n=$(grep -anE '^TEST: .*\[FAIL\]' "$out/$s.log" 2>/dev/null | head -n1 | cut -d: -f1)
		[ -n "$n" ] || continue
		echo "== $s: the log before its first failure"
		sed -n "$((n > 8 ? n - 8 : 1)),$((n - 1))p" "$out/$s.log" | grep -av '^TEST: ' | cut -c1-200
	done
	echo "== failed:"
	printf '  %s\n' "${failures[@]}"
fi
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
