#!/usr/bin/env bash
# Build (or reuse) the mpbal test kernel.
#
# The build lives outside the clone, in $MPBAL_CACHE (default ~/.cache/mpbal),
# keyed by the kernel source version, the config fragment and the toolchain,
# so later runs and CI on the same machine reuse it. Prints the build dir on
# stdout as its last line.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tools/build/env.sh
. "$top/tools/build/env.sh"

tarball=/usr/src/linux-source-6.12.tar.xz
[ -r "$tarball" ] || { echo "kernel.sh: $tarball missing; run 'make deps'" >&2; exit 1; }

kver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
key=$( {
	echo "$kver"
	cat "$top/selftests/config"
	/usr/bin/rustc --version
	bindgen --version
	clang-14 --version | head -n1
	cat "$top/tools/build/kernel.sh"
} | sha256sum | cut -c1-16)

src=$MPBAL_CACHE/src/linux-$kver
build=$MPBAL_CACHE/build/linux-$kver-$key

if [ -f "$build/.mpbal-complete" ] && [ -f "$build/arch/x86/boot/bzImage" ]; then
	echo "kernel: cached $build" >&2
	echo "$build"
	exit 0
fi

if [ ! -f "$src/.mpbal-unpacked" ]; then
	echo "kernel: unpacking $tarball" >&2
	rm -rf "$src" "$src.tmp"
	mkdir -p "$src.tmp"
	tar -C "$src.tmp" --strip-components=1 -xf "$tarball"
	touch "$src.tmp/.mpbal-unpacked"
	mv "$src.tmp" "$src"
fi

mkdir -p "$build"
kmake() { make -C "$src" O="$build" ARCH=x86_64 LLVM=-14 "$@"; }

echo "kernel: configuring $build" >&2
kmake tinyconfig >&2
"$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" \
	"$top/selftests/config" >&2
kmake olddefconfig >&2

# merge_config only warns; a fragment option that did not stick is a broken
# test kernel, so fail here rather than at insmod time.
missing=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=y)
		grep -qx "$line" "$build/.config" || { echo "kernel: $line did not stick" >&2; missing=1; }
		;;
	esac
done < "$top/selftests/config"
[ "$missing" = 0 ] || exit 1

echo "kernel: building (about 8 minutes on 2 cores)" >&2
kmake -j"$(($(nproc) + 1))" bzImage modules >&2
touch "$build/.mpbal-complete"
echo "$build"
