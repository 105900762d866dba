#!/usr/bin/env bash
# Install everything a fresh Debian 12 machine needs to build and test mpbal.
# Does nothing (quickly) when all of it is present. Needs root for apt-get.
set -euo pipefail

# rustc-web and rust-web-src must be the same version: the kernel and the
# module are built by this rustc against this rust-src. 1.85.0 is the version
# verified on this machine kind (Documentation/testing.rst, "Dependencies").
RUST_PIN=1.85.0+dfsg3-1~deb12u3
BINDGEN_VERSION=0.71.1

packages=(
	# kernel source and build
	linux-source-6.12 flex bison bc libelf-dev libssl-dev cpio dwarves kmod
	xz-utils make gcc libc6-dev
	# Rust-for-Linux: LLVM/clang 14 for LLVM=-14 and bindgen's libclang
	libclang-dev clang lld llvm
	# the test VM and what runs inside it
	qemu-system-x86 busybox-static iproute2 nftables conntrack iperf3 ethtool
	jq tcpdump strace procps util-linux
	# make thesis: its report (tools/thesis/report.py) and charts
	python3 gnuplot-nox
	# make check's install test: man -l renders the generated pages
	man-db groff-base
	# and systemd-analyze verify checks mpbald.service
	systemd
)
rust_packages=(rustc-web rust-web-src libstd-rust-web-dev rust-web-clippy)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
rust_ok=1
rust_ver=""
for p in "${rust_packages[@]}"; do
	v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
	[ -n "$v" ] || { rust_ok=0; continue; }
	[ -z "$rust_ver" ] && rust_ver=$v
	[ "$v" = "$rust_ver" ] || rust_ok=0
done

if [ ${#missing[@]} -gt 0 ] || [ $rust_ok = 0 ]; then
	[ "$(id -u)" = 0 ] || { echo "deps: need root to install: ${missing[*]} ${rust_packages[*]}" >&2; exit 1; }
	echo "deps: installing ${missing[*]} ${rust_packages[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	# The pinned rust version if the archive still has it, else the
	# candidate, but always the same version for all three packages.
	if apt-cache madison rustc-web | awk '{print $3}' | grep -qxF "$RUST_PIN"; then
		ver=$RUST_PIN
	else
		ver=$(apt-cache policy rustc-web | awk '/Candidate:/ {print $2}')
		echo "deps: rustc-web $RUST_PIN is gone from the archive, using $ver" >&2
	fi
	apt-get install -y -q --no-install-recommends "${missing[@]}" \
		"${rust_packages[@]/%/=$ver}" >&2
fi

# bindgen from crates.io, the version the kernel's rust/Makefile flags suit.
export PATH=$PATH:$HOME/.cargo/bin
if [ "$(bindgen --version 2>/dev/null)" != "bindgen $BINDGEN_VERSION" ]; then
	command -v cargo >/dev/null || { echo "deps: cargo (rustup) is needed for bindgen-cli" >&2; exit 1; }
	echo "deps: cargo install bindgen-cli $BINDGEN_VERSION" >&2
	cargo install --locked bindgen-cli --version "$BINDGEN_VERSION" >&2
fi

# The kernel build must find Debian's rustc (with rust-src) first.
if ! PATH=/usr/bin:$PATH /usr/bin/rustc --version >/dev/null 2>&1 ||
	[ ! -d /usr/lib/rustlib/src/rust/library ]; then
	echo "deps: /usr/bin/rustc or its rust-src is missing" >&2
	exit 1
fi
echo "deps: ok ($(/usr/bin/rustc --version), $(bindgen --version), $(clang-14 --version | head -n1))"
