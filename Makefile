# mpbal: see README.md. `make check` is the test command CI runs.
#
#   make deps     install build and test dependencies (Debian 12; idempotent)
#   make kernel   build the cached 6.12 test kernel (~7 min once, then instant)
#   make          build mpbal.ko (and mpbal_kunit.ko, its KUnit suite) and mpbalctl
#   make check    host tests, builds, every guest suite in QEMU; "N passed, M failed"
#     SUITES="mpbal_sysctl .."   only these guest suites (selftests/NAME.sh)
#     TESTS="test_numeric .."    only these tests of the one suite in SUITES
#                                (the suite's ALL_TESTS names; TESTS= in the guest)
#     HOST=0                     skip the host tests (cargo test, fmt, clippy)
#     e.g. make check SUITES=mpbal_sysctl TESTS=test_numeric HOST=0
#   make demo     boot the VM, build the thesis testbed, show the four strategies
#   make bench    instructions per packet vs stock ECMP (icount), stages, rates, criterion
#   make thesis   the thesis's experiment (chapters 5, 6) on the bench kernel: out/thesis/
#     THESIS_PARTS="calib sizes mixed delay" THESIS_SIZES="8k 1m" THESIS_CONFIGS="stock-l4 packet"
#                                subsets (environment; see tools/build/thesis.sh)
#
# KDIR=/path/to/kernel/build builds the module against another Rust-enabled
# kernel tree (the same rustc must have built it).

.PHONY: all module tool deps kernel check demo bench thesis clean

# The test kernel's build dir, built on demand (only when a recipe needs it).
KDIR_CMD = $${KDIR:-$$(bash $(CURDIR)/tools/build/kernel.sh | tail -n1)}
KMAKE = env PATH=/usr/bin:/bin:/usr/sbin:/sbin:$$PATH:$$HOME/.cargo/bin $(MAKE) LLVM=-14

all: module tool

module:
	@kdir=$(KDIR_CMD); test -d "$$kdir" || { echo "no kernel build dir '$$kdir'" >&2; exit 1; }; \
	$(KMAKE) -C "$$kdir" M=$(CURDIR) modules

tool:
	cd tools/mpbalctl && cargo build --release --locked

deps:
	bash tools/build/deps.sh

kernel:
	bash tools/build/kernel.sh

# Only what is set reaches check.sh (MPBAL_SUITES=.. make check still works).
CHECK_ENV = $(if $(SUITES),MPBAL_SUITES='$(SUITES)') $(if $(TESTS),MPBAL_TESTS='$(TESTS)') \
	$(if $(HOST),MPBAL_HOST_TESTS='$(HOST)')

check: deps
	$(CHECK_ENV) bash tools/build/check.sh

demo: deps
	bash tools/build/demo.sh

bench: deps
	bash tools/build/bench.sh

thesis: deps
	bash tools/build/thesis.sh

# Removes the module's build outputs without needing a kernel tree (the
# kernel cache in ~/.cache/mpbal stays) and the harness outputs.
clean:
	rm -f mpbal.ko mpbal.mod mpbal.mod.c mpbal.o mpbal_kunit.ko mpbal_kunit.mod \
		mpbal_kunit.mod.c mpbal_kunit.o modules.order Module.symvers \
		src/*.o src/helpers/*.o src/kunit/*.o src/bindings_generated.rs
	find . -path ./tools -prune -o \( -name '.*.cmd' -o -name '*.mod.o' -o -name '.*.d' \) -print0 | xargs -0 rm -f
	rm -rf out
