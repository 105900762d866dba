# Common environment for kernel and module builds; sourced, not run.
#
# The kernel and the module must be built by Debian's rustc-web (it ships the
# matching rust-src); a rustup rustc first on PATH breaks the module build with
# "unknown unstable option: no-jump-tables". bindgen comes from ~/.cargo/bin.
export PATH=/usr/bin:/bin:/usr/sbin:/sbin:$PATH:$HOME/.cargo/bin
export MPBAL_CACHE=${MPBAL_CACHE:-$HOME/.cache/mpbal}
