#!/usr/bin/env bash
# Runs cgctl's tests inside a throw-away qemu VM whose only cgroup hierarchy
# is cgroup v2 (Debian's kernel booted with cgroup_no_v1=all, a busybox
# initramfs; see scripts/cgroup2-vm.sh). This host is hybrid, so the `v2_*`
# tests print SKIP here; in the VM they must run, and the generic ones read
# back the v2 files.
#
#   scripts/vm-test.sh        (as root, after `cargo test -p cgctl --no-run`)
#
# Builds nothing: it asks cargo where the already built test binaries are.
# Installs qemu-system-x86, linux-image-amd64, cpio and busybox-static when
# missing (not qemu-utils: apt resolves that one by itself).
# Exit: 0 when the tests passed, or after `vm-test: SKIP: <why>` when they
# could not run (not root, no qemu, no kernel, no binaries, VM timeout or no
# result); the tests' own non-zero status when they ran and failed.
# Then mydocker's own cgroup tests (limits, OOM, stats, pause, update) run in a
# second boot with the host's userland (HOST_ROOT=1), about 3 minutes.
# Knobs: VM_TEST_TIMEOUT (default 90 s), VM_TEST_FILTER (a libtest name
# filter, default: all of cgctl's tests), and cgroup2-vm.sh's own.
set -uo pipefail
cd "$(dirname "$0")/.."
skip() { echo "vm-test: SKIP: $*"; exit 0; }

[ "$(id -u)" = 0 ] || skip "needs root (9p passthrough, cgroups in the guest)"

pkgs=(qemu-system-x86 linux-image-amd64 cpio busybox-static)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "vm-test: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
    skip "could not install ${missing[*]}"
fi
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not found"
ls /boot/vmlinuz-* >/dev/null 2>&1 || skip "no kernel in /boot (linux-image-amd64)"
command -v cargo >/dev/null || skip "cargo not found (needed to locate the test binaries)"

# The test binaries of cgctl (lib unit tests and tests/cli.rs) and the cgctl
# binary, as cargo reports them.
json=$(cargo test -p cgctl --no-run --message-format=json 2>/dev/null) || skip "cgctl's tests are not built (cargo test -p cgctl --no-run failed)"
arts=$(printf '%s\n' "$json" | grep '"reason":"compiler-artifact"')
tests=$(printf '%s\n' "$arts" | grep '"profile":{[^}]*"test":true' | grep -v '"kind":\["bin"\]' |
  grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
tool=$(printf '%s\n' "$arts" | grep '"kind":\["bin"\]' | grep -v '"profile":{[^}]*"test":true' |
  grep -o '"executable":"[^"]*/cgctl"' | cut -d'"' -f4 | head -n1)
[ -n "$tests" ] && [ -x "$tool" ] || skip "cgctl or its test binaries not found (run cargo test -p cgctl --no-run)"

# Share the common ancestor of the repo and the binaries (target/ may live
# elsewhere with CARGO_TARGET_DIR); 9p keeps host paths valid in the guest.
share=$PWD
for b in $tests $tool; do
  until [[ $b == "$share"/* || $share == / ]]; do share=$(dirname "$share"); done
done
[ "$share" != / ] || skip "the test binaries share no directory with $PWD below /"

# One boot runs every binary, one test at a time (2 slow emulated cpus); the
# first failing status is returned. Binaries are copied to the guest's tmpfs
# first: every exec straight from 9p costs about half a second under TCG.
filter=${VM_TEST_FILTER:-}
cmd="rc=0; mkdir -p /tmp/vmbin && cp '$tool' /tmp/vmbin/cgctl && export CGCTL_BIN=/tmp/vmbin/cgctl || exit 125;"
i=0
for b in $tests; do
  i=$((i + 1))
  cmd+=" cp '$b' /tmp/vmbin/t$i && /tmp/vmbin/t$i --test-threads=1 --nocapture $filter || rc=\$?;"
done
cmd+=" exit \$rc"

# Phase 2: mydocker itself on pure v2 (limits, OOM kill, stats, pause, update,
# cgroup removal): the end-to-end tests that need no netfilter, run from the
# host's userland (HOST_ROOT=1) so the tools and busybox are all there.
mydocker_on_v2() {
  local e2e sec nsr
  bin_of() {
    cargo test -p e2e --test "$1" --no-run --message-format=json 2>/dev/null |
      grep '"reason":"compiler-artifact"' | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | head -n1
  }
  e2e=$(bin_of mydocker); sec=$(bin_of security); nsr=$(bin_of nsrun)
  [ -x "$e2e" ] && [ -x "$sec" ] && [ -x "$nsr" ] || { echo "vm-test: SKIP: mydocker on v2: e2e test binaries not built"; return 0; }
  local filter=${VM_TEST_MYDOCKER_FILTER:-"memory_limit_oom update_changes_the_limits"}
  # nsrun's cgroups from the config and the security defaults (seccomp, the
  # BPF device program, cgroup namespace) on pure v2 too
  local nsr_filter=${VM_TEST_NSRUN_FILTER:-"resources memory_and_pids exec_joins_the_containers_cgroup"}
  # two of the security tests: each container costs seconds under TCG
  local sec_filter=${VM_TEST_SECURITY_FILTER:-"a_default_container cgroup_parent_and_namespace"}
  local start2 rc2
  start2=$(date +%s)
  HOST_ROOT=1 VM_TIMEOUT=${VM_TEST_TIMEOUT_MYDOCKER:-600} VM_QUIET=1 VM_CWD=$PWD \
    VM_ENV_VARS="MYDOCKER_TEST_IMAGE" MYDOCKER_TEST_IMAGE=$PWD/build/busybox.tar \
    scripts/cgroup2-vm.sh "$share" "'$e2e' --test-threads=1 $filter && '$sec' --test-threads=1 $sec_filter && '$nsr' --test-threads=1 $nsr_filter" 2>&1 | tee "$log"
  rc2=${PIPESTATUS[0]}
  case $rc2 in
    124) echo "vm-test: SKIP: mydocker on v2: the VM timed out"; return 0 ;;
    125) echo "vm-test: SKIP: mydocker on v2: the VM gave no result"; return 0 ;;
  esac
  if [ "$rc2" = 0 ] && grep -q 'test result: ok. [1-9]' "$log"; then
    echo "vm-test: ok: mydocker's cgroup tests passed on cgroup v2 in the VM ($(( $(date +%s) - start2 ))s)"
    return 0
  fi
  echo "vm-test: FAIL: mydocker's cgroup tests on cgroup v2 (status $rc2)"
  return 1
}

log=$(mktemp /tmp/vm-test.XXXXXX)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
VM_TIMEOUT=${VM_TEST_TIMEOUT:-90} VM_QUIET=1 VM_CWD=$PWD RUST_BACKTRACE=${RUST_BACKTRACE:-1} \
  scripts/cgroup2-vm.sh "$share" "$cmd" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
secs=$(( $(date +%s) - start ))
case $rc in
  124) skip "the VM timed out after ${VM_TEST_TIMEOUT:-90}s" ;;
  125) skip "the VM gave no result (it did not boot or died; console above)" ;;
  2) grep -q '^cgroup2-vm: ' "$log" && ! grep -q 'test result' "$log" && skip "cgroup2-vm.sh could not start: $(grep '^cgroup2-vm: ' "$log" | tail -n1)" ;;
esac
if [ "$rc" = 0 ]; then
  # a v2_ test that skipped inside the VM means the VM was not pure v2
  if grep -q 'SKIP v2_' "$log"; then
    echo "vm-test: FAIL: v2 tests skipped inside the VM: $(grep -o 'SKIP v2_.*' "$log" | head -n1)"
    exit 1
  fi
  grep -q 'test result: ok' "$log" || { echo "vm-test: FAIL: no test results in the VM output"; exit 1; }
  echo "vm-test: ok: cgctl tests passed on cgroup v2 in the VM (${secs}s)"
  mydocker_on_v2
  exit $?
fi
echo "vm-test: FAIL: cgctl tests failed on cgroup v2 in the VM (status $rc, ${secs}s)"
exit "$rc"
