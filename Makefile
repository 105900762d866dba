# mpbal: see README.md. `make check` is the test command CI runs.
.PHONY: all module tool deps kernel check check-host demo bench clean fmt clippy

top := $(abspath .)
KERNEL_BUILD = $(shell bash $(top)/tools/build/kernel.sh 2>/dev/null | tail -n1)
# Build against another Rust-enabled kernel tree with KDIR=...
KDIR ?= $(KERNEL_BUILD)
KMAKE = env PATH=/usr/bin:/bin:/usr/sbin:/sbin:$$PATH:$$HOME/.cargo/bin \
	$(MAKE) -C $(KDIR) LLVM=-14 M=$(top)

all: module tool

module:
	@test -n "$(KDIR)" || { echo "no kernel build: run 'make kernel' or pass KDIR=" >&2; exit 1; }
	$(KMAKE) modules

tool:
	cd tools/mpbalctl && cargo build --release --locked

deps:
	bash tools/build/deps.sh

kernel:
	bash tools/build/kernel.sh

clean:
	-test -n "$(KDIR)" && $(KMAKE) clean
	rm -rf out
