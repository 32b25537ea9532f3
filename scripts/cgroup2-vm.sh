#!/usr/bin/env bash
# cgroup2-vm.sh: boot a throw-away Debian-kernel VM whose ONLY cgroup
# hierarchy is cgroup v2 (cgroup_no_v1=all), share a host directory into it
# over 9p, run one command there, copy its exit status back, power off.
#
# Usage:
#   cgroup2-vm.sh SHARE_DIR ['SHELL COMMAND']     one string: run by sh -c
#   cgroup2-vm.sh SHARE_DIR PROGRAM ARG...        several: argv, quoted
#   cgroup2-vm.sh --runner BINARY ARG...          cargo runner, see below
#
#   SHARE_DIR  host directory shared read-write into the guest over 9p
#              (virtio-9p). It is mounted at /mnt AND at its own absolute host
#              path, so absolute paths (e.g. cargo's target/ dirs) keep working.
#   COMMAND    runs inside the guest as root, cwd = SHARE_DIR (VM_CWD to
#              change), in the root cgroup of a cgroup2-only hierarchy with
#              +cpu +cpuset +memory +pids in /sys/fs/cgroup/cgroup.subtree_control.
#              Without COMMAND only the built-in self-test runs.
#   --runner   for CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER: shares the
#              common ancestor of $PWD and BINARY, runs BINARY ARG... in $PWD,
#              prints only the guest command's output (VM_QUIET=1).
#
# Result: COMMAND's output goes to the console (stdout) and its exit status
# comes back over a private 9p share; this script exits with that status
# (124 on timeout, 125 if the VM died before reporting).
#
# Environment knobs:
#   ACCEL=auto|kvm|tcg   default auto: tcg unless the CPU shows vmx/svm. (On a
#                        PVM-backed /dev/kvm, a software hypervisor, an
#                        unmodified kernel runs ~250x slower than under TCG.)
#   KVER=...             kernel version under /boot and /lib/modules (default:
#                        newest /boot/vmlinuz-*)
#   MEM=1024 SMP=2       guest RAM (MiB) and vCPUs
#   VM_TIMEOUT=120       hard wall-clock limit for qemu, seconds
#   PVH=1                boot the vmlinux extracted from the bzImage through
#                        its PVH entry (saves ~4 s under TCG); PVH=0: bzImage
#   HOST_ROOT=1          run COMMAND with a read-only 9p view of the host's /
#                        as its root (full host userland: glibc, ip, iptables,
#                        cargo...), tmpfs /tmp,/run and SHARE_DIR rw.
#                        Default 0: busybox + host glibc only (enough for a
#                        Rust test binary).
#   EXTRA_MODULES="..."  more kernel modules to load (deps resolved by modprobe)
#   CG_CONTROLLERS="+memory +pids +cpu +cpuset"   written to the root cgroup's
#                        subtree_control (available: cpuset cpu io memory
#                        hugetlb pids rdma misc)
#   VM_ENV_VARS="A B"    host variables to pass to COMMAND besides PATH, HOME,
#                        CARGO_HOME, RUSTUP_HOME, RUST_BACKTRACE, RUST_LOG
#   KEEP_TMP=1           keep the build dir under /tmp (debugging)
#   VERBOSE=1            show kernel messages (drops `quiet`)
#   VM_QUIET=1           hide the console; print only COMMAND's output
#                        afterwards (full console on stderr if no result)
#   VM_CWD=DIR           working directory of COMMAND (must be under SHARE_DIR
#                        or, with HOST_ROOT=1, anywhere)
#
# Requires root on the host (9p security_model=passthrough, reading /boot).
# Installs qemu-system-x86, linux-image-amd64, busybox-static, cpio if absent
# (not qemu-utils: bookworm-backports' qemu-utils conflicts with bookworm's
# qemu-system 7.2 and apt swaps it by itself when not asked).
# Adapted for mydocker from the recipe in ../shared/vm (timings, pitfalls).
set -euo pipefail

die() { echo "cgroup2-vm: $*" >&2; exit 2; }

sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
[[ $# -ge 1 ]] || die "usage: $0 SHARE_DIR [COMMAND [ARGS...]] | $0 --runner BINARY [ARGS...]"
if [[ $1 == --runner ]]; then
  shift; [[ $# -ge 1 ]] || die "--runner needs a binary"
  bin=$(realpath -- "$1"); shift
  VM_CWD=${VM_CWD:-$PWD}
  SHARE=$VM_CWD; until [[ $bin == "$SHARE"/* || $SHARE == / ]]; do SHARE=$(dirname "$SHARE"); done
  [[ $SHARE != / ]] || die "--runner: $PWD and $bin share no directory below /"
  set -- "$bin" "$@"
  VM_QUIET=${VM_QUIET:-1}
else
  SHARE=$(realpath -- "$1"); shift
fi
[[ -d $SHARE ]] || die "share dir $SHARE does not exist"
if (($# > 1)); then CMD=""; for a in "$@"; do CMD+="$(sq "$a") "; done; else CMD="${1:-}"; fi
VM_CWD=${VM_CWD:-$SHARE}
VM_QUIET=${VM_QUIET:-0}

ACCEL=${ACCEL:-auto}
MEM=${MEM:-1024}
SMP=${SMP:-2}
VM_TIMEOUT=${VM_TIMEOUT:-120}
HOST_ROOT=${HOST_ROOT:-0}
BASE_MODULES="virtio_pci 9pnet_virtio 9p overlay veth bridge br_netfilter tun loop"
MODULES="$BASE_MODULES ${EXTRA_MODULES:-}"

# ---- 0. prerequisites ------------------------------------------------------
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v cpio >/dev/null || need_pkgs+=(cpio)
ls /boot/vmlinuz-* >/dev/null 2>&1 || need_pkgs+=(linux-image-amd64)
if ((${#need_pkgs[@]})); then
  echo "cgroup2-vm: installing ${need_pkgs[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need_pkgs[@]}" >/dev/null
fi
BUSYBOX=$(dpkg -L busybox-static 2>/dev/null | grep -m1 '/bin/busybox$' || command -v busybox)

KVER=${KVER:-$(ls -1 /boot/vmlinuz-* | sed 's|/boot/vmlinuz-||' | sort -V | tail -n1)}
VMLINUZ=/boot/vmlinuz-$KVER
[[ -r $VMLINUZ && -d /lib/modules/$KVER ]] || die "kernel $KVER not installed"

if [[ $ACCEL == auto ]]; then
  # Real KVM needs VT-x/AMD-V. This machine's /dev/kvm is a PVM (software)
  # hypervisor without vmx/svm in cpuinfo: it runs a stock kernel ~100x
  # slower than TCG, so only use KVM when the CPU flags are there.
  if [[ -w /dev/kvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACCEL=kvm; else ACCEL=tcg; fi
fi
case $ACCEL in
  # -arch-capabilities: with plain "-cpu host" qemu 7.2 aborts here with
  # "failed to set MSR 0x10a to 0x69" (kvm_buf_set_msrs assertion)
  kvm) ACCEL_ARGS=(-accel kvm -cpu host,-arch-capabilities) ;;
  tcg) ACCEL_ARGS=(-accel tcg,thread=multi -cpu max) ;;
  *) die "ACCEL must be auto, kvm or tcg" ;;
esac

# ---- 1. build the initramfs under /tmp ---------------------------------------
WORK=$(mktemp -d /tmp/cg2vm.XXXXXX)
cleanup() { [[ ${KEEP_TMP:-0} == 1 ]] && echo "kept $WORK" >&2 || rm -rf "$WORK"; }
trap cleanup EXIT
R=$WORK/root
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,run,mnt,host,lib64,lib/x86_64-linux-gnu}
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do
  [[ $a == busybox ]] || ln -sf busybox "$R/bin/$a"
done
mknod -m 600 "$R/dev/console" c 5 1
mknod -m 666 "$R/dev/null" c 1 3

# kernel modules (+ dependencies, in load order) from the installed package
: > "$R/etc/modules.load"
for m in $MODULES; do
  deps=$(modprobe -S "$KVER" --show-depends "$m") || die "module $m not found for kernel $KVER"
  while read -r kind src _; do
    [[ $kind == insmod ]] || continue          # "builtin X": nothing to load
    ko=${src%.xz}; ko=${ko%.zst}                # path of the .ko in the guest
    grep -qxF "$ko" "$R/etc/modules.load" && continue
    mkdir -p "$R$(dirname "$ko")"
    case $src in
      *.ko.xz)  xz -dc "$src" > "$R$ko" ;;      # busybox insmod wants plain .ko
      *.ko.zst) zstd -qdc "$src" > "$R$ko" ;;
      *)        cp "$src" "$R$ko" ;;
    esac
    echo "$ko" >> "$R/etc/modules.load"
  done <<< "$deps"
done

# host glibc (enough for ordinary dynamically linked Rust test binaries),
# plus whatever `ldd` says the command's first word needs, if it is a file
copy_lib() { local f; for f in "$@"; do
  [[ -e $f && ! -e $R$f && ! -L $R$f ]] || continue
  mkdir -p "$R$(dirname "$f")"; cp -L "$f" "$R$f"; done; }
copy_lib /lib/x86_64-linux-gnu/{ld-linux-x86-64.so.2,libc.so.6,libm.so.6,libgcc_s.so.1,libpthread.so.0,libdl.so.2,librt.so.1,libutil.so.1}
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$R/lib64/ld-linux-x86-64.so.2"
first=${CMD%% *}; first=${first#\'}; first=${first%\'}
for cand in "$first" "$VM_CWD/$first"; do
  if [[ -f $cand ]] && ldd "$cand" >/dev/null 2>&1; then
    copy_lib $(ldd "$cand" | grep -o '/[^ ]*' | sort -u)
    break
  fi
done

printf '%s\n' "$CMD" > "$R/etc/vm-cmd"
printf '%s\n' "$SHARE" > "$R/etc/vm-share"
printf '%s\n' "$VM_CWD" > "$R/etc/vm-cwd"
printf '%s\n' "$HOST_ROOT" > "$R/etc/vm-hostroot"
printf '%s\n' "${CG_CONTROLLERS:-+memory +pids +cpu +cpuset}" > "$R/etc/vm-controllers"
# host environment handed to COMMAND (PATH so that cargo etc. resolve in
# HOST_ROOT mode; add more names with VM_ENV_VARS="FOO BAR")
for v in PATH HOME CARGO_HOME RUSTUP_HOME RUST_BACKTRACE RUST_LOG ${VM_ENV_VARS:-}; do
  [[ -n ${!v+x} ]] || continue
  printf "export %s='%s'\n" "$v" "$(printf '%s' "${!v}" | sed "s/'/'\\\\''/g")"
done > "$R/etc/vm-env"
echo 'export PATH="$PATH:/usr/sbin:/usr/bin:/sbin:/bin"' >> "$R/etc/vm-env"

cat > "$R/init" <<'INIT'
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
# pivot_root(2) fails with EINVAL while / is the initramfs (rootfs), which
# breaks container runtimes: move everything onto a tmpfs and switch_root.
if [ ! -e /.tmpfs-root ]; then
  mkdir -p /newroot && mount -t tmpfs -o mode=755 tmpfs /newroot
  for d in /*; do [ "$d" = /newroot ] || cp -a "$d" /newroot/; done
  touch /newroot/.tmpfs-root
  exec switch_root /newroot /init
fi
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ip link set lo up
hostname cg2vm
say() { echo "[cg2vm] $*"; }
fail=0
check() { if "$@"; then say "ok: $*"; else say "FAIL: $*"; fail=1; fi; }

# --- kernel modules
while read -r ko; do
  insmod "$ko" 2>/tmp/insmod.err || { grep -q 'File exists' /tmp/insmod.err || { say "insmod $ko failed: $(cat /tmp/insmod.err)"; fail=1; }; }
done < /etc/modules.load
say "modules: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"

# --- cgroup v2
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
say "cgroup mounts: $(grep cgroup /proc/mounts | cut -d' ' -f2,3 | tr '\n' ' ')"
say "cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
check sh -c "echo '$(cat /etc/vm-controllers)' > /sys/fs/cgroup/cgroup.subtree_control"
say "subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
check mkdir /sys/fs/cgroup/selftest
check sh -c 'echo 64M > /sys/fs/cgroup/selftest/memory.max'
check sh -c 'echo 32 > /sys/fs/cgroup/selftest/pids.max'
# a child process moves itself in, reports, leaves; then the cgroup is removed
sh -c 'echo $$ > /sys/fs/cgroup/selftest/cgroup.procs &&
       echo "[cg2vm] selftest pid $$ in $(cat /proc/self/cgroup), memory.max=$(cat /sys/fs/cgroup/selftest/memory.max) pids.max=$(cat /sys/fs/cgroup/selftest/pids.max)"' || fail=1
check rmdir /sys/fs/cgroup/selftest

# --- overlay / veth / bridge
mkdir -p /tmp/ov/l /tmp/ov/u /tmp/ov/w /tmp/ov/m && echo lower > /tmp/ov/l/f
check mount -t overlay overlay -o lowerdir=/tmp/ov/l,upperdir=/tmp/ov/u,workdir=/tmp/ov/w /tmp/ov/m
check sh -c 'echo upper >> /tmp/ov/m/f && [ -f /tmp/ov/u/f ]'
umount /tmp/ov/m 2>/dev/null
check ip link add cg2br0 type bridge
check ip link add cg2veth0 type veth peer name cg2veth1
check ip link set cg2veth0 master cg2br0
check ip link set cg2br0 up
ip link del cg2veth0 2>/dev/null; ip link del cg2br0 2>/dev/null
[ $fail = 0 ] && say "SELFTEST PASSED" || say "SELFTEST FAILED"

# --- shared folder + user command. Results go to a private 9p share
# (tag vmout -> $WORK/out on the host): rc, log.
SHARE=$(cat /etc/vm-share); CWD=$(cat /etc/vm-cwd); CMD=$(cat /etc/vm-cmd); HOST_ROOT=$(cat /etc/vm-hostroot)
P9=trans=virtio,version=9p2000.L,msize=262144,access=any
mkdir -p /out; mount -t 9p -o $P9 vmout /out || say "FAIL: cannot mount result share"
rc=0
if mount -t 9p -o $P9 host0 /mnt; then
  mkdir -p "$SHARE" 2>/dev/null && mount --bind /mnt "$SHARE"
  if [ -n "$CMD" ]; then
    if [ "$HOST_ROOT" = 1 ]; then
      mount -t 9p -o $P9,ro hostroot /host || say "FAIL: mount hostroot"
      for d in proc sys dev run tmp; do mount --rbind /$d /host/$d; done
      mount --rbind /mnt "/host$SHARE"
      say "running (host root): $CMD"
      # not chroot: a chrooted process may not create user namespaces
      # (unshare -U => EPERM). A private mount namespace pivoted onto /host
      # has /host as its real root instead.
      export VM_CMD="$CMD" VM_CWD="$CWD"
      ( . /etc/vm-env; unshare -m -- /bin/sh -c 'mount --make-rprivate / && cd /host &&
          pivot_root . . && umount -l . && cd "$VM_CWD" && c=$VM_CMD && unset VM_CWD VM_CMD &&
          exec /bin/sh -c "$c"'; echo $? > /tmp/rc ) 2>&1 | tee /out/log
    else
      say "running: $CMD"
      ( . /etc/vm-env; cd "$CWD" && sh -c "$CMD"; echo $? > /tmp/rc ) 2>&1 | tee /out/log
    fi
    rc=$(cat /tmp/rc 2>/dev/null || echo 125)
  else
    rc=$fail
  fi
else
  say "FAIL: cannot mount 9p share"; rc=125
fi
say "VM-RC=$rc"
echo "$rc" > /out/rc
sync
poweroff -f
INIT
chmod 755 "$R/init"

INITRD=$WORK/initrd.cpio.gz
(cd "$R" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$INITRD"

# Boot the *uncompressed* vmlinux through its PVH entry point (CONFIG_PVH=y):
# under TCG the bzImage's own xz decompression costs ~4 s of a ~9 s boot.
# Extracting it on the host takes <1 s. Falls back to the bzImage.
KERNEL=$VMLINUZ
if [[ ${PVH:-1} == 1 ]]; then
  for magic in $'\xfd7zXZ:xz -dc' $'\x28\xb5\x2f\xfd:zstd -qdc' $'\x1f\x8b\x08:gzip -dc'; do
    off=$(LC_ALL=C grep -abo -m1 "${magic%%:*}" "$VMLINUZ" 2>/dev/null | head -n1 | cut -d: -f1) || true
    [[ -n $off ]] || continue
    tail -c +$((off + 1)) "$VMLINUZ" | ${magic#*:} > "$WORK/vmlinux" 2>/dev/null || true
    if [[ $(head -c 4 "$WORK/vmlinux" 2>/dev/null | od -An -c | tr -d ' ') == 177ELF ]]; then
      KERNEL=$WORK/vmlinux; break
    fi
  done
fi

# ---- 2. boot ---------------------------------------------------------------
mkdir -p "$WORK/out"
APPEND="console=ttyS0 cgroup_no_v1=all panic=-1 reboot=t"
[[ ${VERBOSE:-0} == 1 ]] || APPEND+=" quiet"
VIRTFS=(-virtfs "local,path=$SHARE,mount_tag=host0,security_model=passthrough,id=host0")
VIRTFS+=(-virtfs "local,path=$WORK/out,mount_tag=vmout,security_model=passthrough,id=vmout")
[[ $HOST_ROOT == 1 ]] && VIRTFS+=(-virtfs "local,path=/,mount_tag=hostroot,security_model=passthrough,id=hostroot,readonly=on,multidevs=remap")

echo "cgroup2-vm: kernel $KVER ($([[ $KERNEL == "$VMLINUZ" ]] && echo bzImage || echo 'vmlinux via PVH')), accel $ACCEL, share $SHARE" >&2
set +e
start=$(date +%s%N)
if [[ $VM_QUIET == 1 ]]; then exec 3>&1 4>&2 >"$WORK/console.log" 2>&1; fi
timeout "$VM_TIMEOUT" qemu-system-x86_64 "${ACCEL_ARGS[@]}" -m "$MEM" -smp "$SMP" \
  -nographic -no-reboot -nodefaults -serial stdio -net none \
  -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND" "${VIRTFS[@]}" </dev/null
qrc=$?
if [[ $VM_QUIET == 1 ]]; then
  exec 1>&3 2>&4 3>&- 4>&-
  if [[ -f $WORK/out/rc ]]; then cat "$WORK/out/log" 2>/dev/null; else tr -d '\r' < "$WORK/console.log" >&2; fi
fi
set -e
ms=$(( ($(date +%s%N) - start) / 1000000 ))
printf 'cgroup2-vm: qemu exit %s after %d.%03ds\n' "$qrc" $((ms/1000)) $((ms%1000)) >&2
[[ $qrc == 124 ]] && { echo "cgroup2-vm: TIMEOUT after ${VM_TIMEOUT}s" >&2; exit 124; }
[[ -s $WORK/out/rc ]] || { echo "cgroup2-vm: VM gave no result" >&2; exit 125; }
exit "$(cat "$WORK/out/rc")"
