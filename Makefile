# mpbal: see README.md. `make check` is the test command CI runs.
#
#   make deps     install build and test dependencies (Debian 12; idempotent)
#   make kernel   build the cached 6.12 test kernel (~7 min once, then instant)
#   make          build mpbal.ko (and mpbal_kunit.ko, its KUnit suite) and mpbalctl
#   make check    host tests, builds, every guest suite in QEMU; "N passed, M failed"
#     SUITES="mpbal_sysctl .."   only these guest suites (selftests/NAME.sh)
#     TESTS="test_numeric .."    only these tests of the one suite in SUITES
#                                (the suite's ALL_TESTS names; TESTS= in the guest)
#     HOST=0                     skip the host tests (cargo test, fmt, clippy, make install)
#     e.g. make check SUITES=mpbal_sysctl TESTS=test_numeric HOST=0
#   make demo     boot the VM, build the thesis testbed, show the four strategies
#   make bench    instructions per packet vs stock ECMP (icount), stages, rates, criterion
#   make thesis   the thesis's experiment (chapters 5, 6) on the bench kernel: out/thesis/
#     THESIS_PARTS="calib sizes mixed delay" THESIS_SIZES="8k 1m" THESIS_CONFIGS="stock-l4 packet"
#                                subsets (environment; see tools/build/thesis.sh)
#   make install  the module's source for DKMS, mpbalctl and mpbald, man pages,
#                 completions, mpbald.service, a modules-load.d entry, docs
#                 (README.md, "Install")
#     DESTDIR=/tmp/stage PREFIX=/usr    stage for a package; PREFIX defaults to /usr/local
#
# KDIR=/path/to/kernel/build builds the module against another Rust-enabled
# kernel tree (the same rustc must have built it).

.PHONY: all module tool deps kernel check demo bench thesis install clean

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

# make install. PREFIX is for mpbalctl (and mpbald, a link to it) and its
# files; the DKMS source tree goes to /usr/src, where dkms looks, and the
# modules-load.d entry and mpbald.service to /usr/lib, where systemd looks,
# whatever PREFIX is.
PREFIX ?= /usr/local
# Expanded only by install: the DKMS tree has this Makefile but no tools/.
VERSION = $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' tools/mpbalctl/Cargo.toml)
DKMS_DIR = $(DESTDIR)/usr/src/mpbal-$(VERSION)
# What kbuild needs for mpbal.ko, and for mpbal_kunit.ko, which Kbuild adds
# on kernels with CONFIG_KUNIT: no host tests, benches or build outputs.
DKMS_FILES = Kbuild Makefile LICENSE include/mpbal.h $(filter-out src/bindings_generated.rs, \
	$(wildcard src/*.rs src/*/*.rs src/*/*.c src/*/*.h))
TOOL_OUT = tools/mpbalctl/target/release
GEN_DIR = tools/mpbalctl/target/gen
DOC_DIR = $(DESTDIR)$(PREFIX)/share/doc/mpbal

# File targets, rebuilt only when a source is newer: `sudo make install`
# after `make tool` then needs no cargo in root's PATH.
$(TOOL_OUT)/mpbalctl $(TOOL_OUT)/mpbalctl-gen &: $(wildcard tools/mpbalctl/Cargo.* \
		tools/mpbalctl/src/*.rs tools/mpbalctl/src/bin/*.rs src/core/Cargo.toml src/core/*.rs)
	cd tools/mpbalctl && cargo build --release --locked

$(GEN_DIR)/mpbalctl.8: $(TOOL_OUT)/mpbalctl-gen
	rm -rf $(GEN_DIR)
	$(TOOL_OUT)/mpbalctl-gen $(GEN_DIR)

install: $(TOOL_OUT)/mpbalctl $(GEN_DIR)/mpbalctl.8
	for f in $(DKMS_FILES); do install -D -m 644 $$f $(DKMS_DIR)/$$f || exit; done
	sed 's/@VERSION@/$(VERSION)/' packaging/dkms.conf.in >$(DKMS_DIR)/dkms.conf
	install -D -m 755 $(TOOL_OUT)/mpbalctl $(DESTDIR)$(PREFIX)/sbin/mpbalctl
	ln -sf mpbalctl $(DESTDIR)$(PREFIX)/sbin/mpbald
	sed 's|@SBINDIR@|$(PREFIX)/sbin|g' packaging/mpbald.service.in | \
		install -D -m 644 /dev/stdin $(DESTDIR)/usr/lib/systemd/system/mpbald.service
	install -d $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 644 $(GEN_DIR)/*.8 $(DESTDIR)$(PREFIX)/share/man/man8
	install -D -m 644 $(GEN_DIR)/mpbalctl.bash \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/mpbalctl
	install -D -m 644 $(GEN_DIR)/_mpbalctl $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_mpbalctl
	install -D -m 644 $(GEN_DIR)/mpbalctl.fish \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/mpbalctl.fish
	install -D -m 644 packaging/mpbal.modules-load.conf $(DESTDIR)/usr/lib/modules-load.d/mpbal.conf
	install -d $(DOC_DIR)/Documentation
	install -m 644 README.md LICENSE packaging/mpbal.conf.example packaging/mpbal.toml.example \
		$(DOC_DIR)
	install -m 644 Documentation/*.rst $(DOC_DIR)/Documentation

# Removes the module's build outputs without needing a kernel tree (the
# kernel cache in ~/.cache/mpbal stays) and the harness outputs.
clean:
	rm -f mpbal.ko mpbal.mod mpbal.mod.c mpbal.o mpbal_kunit.ko mpbal_kunit.mod \
		mpbal_kunit.mod.c mpbal_kunit.o modules.order Module.symvers \
		src/*.o src/helpers/*.o src/kunit/*.o src/bindings_generated.rs
	find . -path ./tools -prune -o \( -name '.*.cmd' -o -name '*.mod.o' -o -name '.*.d' \) -print0 | xargs -0 rm -f
	rm -rf out
