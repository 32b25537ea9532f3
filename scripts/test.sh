#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, makes the default
# image, runs every unit, CLI and end-to-end test as root on this host, then the
# cgroup v2 tests inside a qemu VM (scripts/vm-test.sh says when it must skip).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test: run as root (the tests make namespaces, mounts, cgroups and bridges)" >&2; exit 1; }
scripts/deps.sh --vm
cargo build --workspace --bins
scripts/mkimage-busybox.sh build/busybox.tar >/dev/null
export MYDOCKER_TEST_IMAGE=$PWD/build/busybox.tar
# cargo counts a skipped test as passed: each skip appends a line here
# (tests/src/skip.rs), listed at the very end, whatever the outcome.
MYDOCKER_SKIP_LOG=$(mktemp -t mydocker-skipped.XXXXXX)
export MYDOCKER_SKIP_LOG
skip_summary() {
    local n
    n=$(sort -u "$MYDOCKER_SKIP_LOG" | grep -c . || true)
    echo "$n tests skipped:"
    sort -u "$MYDOCKER_SKIP_LOG" | sed 's/^/  /'
    rm -f "$MYDOCKER_SKIP_LOG"
}
# The network tests turn forwarding on (as docker does) and the CNI plugin
# mode keeps its machine-wide locks in /run/mydocker: the suite leaves the
# host as it found it.
sysctls=(net.ipv4.ip_forward net.ipv6.conf.all.forwarding)
declare -A was
for k in "${sysctls[@]}"; do was[$k]=$(sysctl -n "$k"); done
run_dir_was=$([ -e /run/mydocker ] && echo yes || echo no)
restore_host() {
    for k in "${sysctls[@]}"; do sysctl -qw "$k=${was[$k]}" || true; done
    [ "$run_dir_was" = yes ] || rm -rf /run/mydocker
}
trap 'skip_summary; restore_host' EXIT
cargo test --workspace --no-fail-fast
if [ -x scripts/vm-test.sh ]; then scripts/vm-test.sh; fi
