#!/usr/bin/env bash
# Build (or reuse) the mpbal test kernel: kernel.sh [bench]
#
# `bench` builds the bench kernel: the same fragment plus
# selftests/config.bench, which drops the debugging options.
#
# The build lives outside the clone, in $MPBAL_CACHE (default ~/.cache/mpbal),
# keyed by the kernel source version, the config fragment and the toolchain,
# so later runs and CI on the same machine reuse it. Prints the build dir on
# stdout as its last line.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tools/build/env.sh
. "$top/tools/build/env.sh"

fragments=("$top/selftests/config")
variant=test
if [ "${1:-}" = bench ]; then
	fragments+=("$top/selftests/config.bench")
	variant=bench
fi

# Bump when the way the kernel is configured or built changes.
RECIPE=2

tarball=/usr/src/linux-source-6.12.tar.xz
[ -r "$tarball" ] || { echo "kernel.sh: $tarball missing; run 'make deps'" >&2; exit 1; }

kver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
key=$( {
	echo "$kver"
	cat "${fragments[@]}"
	/usr/bin/rustc --version
	bindgen --version
	clang-14 --version | head -n1
	echo "recipe $RECIPE"
} | sha256sum | cut -c1-16)

src=$MPBAL_CACHE/src/linux-$kver
build=$MPBAL_CACHE/build/linux-$kver-$variant-$key

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
	"${fragments[@]}" >&2
kmake olddefconfig >&2

# merge_config only warns; a fragment option that did not stick is a broken
# test kernel, so fail here rather than at insmod time.
# The last fragment that names an option decides it.
missing=0
declare -A want=()
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=y) want[${line%%=*}]=y ;;
	"# CONFIG_"*" is not set") o=${line#\# }; want[${o%% *}]=n ;;
	esac
done < <(cat "${fragments[@]}")
for o in "${!want[@]}"; do
	if [ "${want[$o]}" = y ]; then
		grep -qx "$o=y" "$build/.config" || { echo "kernel: $o=y did not stick" >&2; missing=1; }
	else
		! grep -qx "$o=y" "$build/.config" || { echo "kernel: $o is still set" >&2; missing=1; }
	fi
done
[ "$missing" = 0 ] || exit 1

echo "kernel: building (about 8 minutes on 2 cores)" >&2
kmake -j"$(($(nproc) + 1))" bzImage modules >&2
touch "$build/.mpbal-complete"
echo "$build"
