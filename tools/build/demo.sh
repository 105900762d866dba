#!/usr/bin/env bash
# make demo: build what is needed, boot the test VM and run selftests/demo.sh.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
kbuild=$(bash tools/build/kernel.sh | tail -n1)
KDIR=$kbuild make -s module
(cd tools/mpbalctl && cargo build --release --locked -q)
exec bash selftests/vm/run.sh --kernel "$kbuild/arch/x86/boot/bzImage" --module mpbal.ko \
	--tool tools/mpbalctl/target/release/mpbalctl --timeout 900 \
	-- /selftests/demo.sh </dev/null
