#!/usr/bin/env bash
# Installs the Debian packages mydocker and its tests need, only those missing.
#   scripts/deps.sh [--vm]   (--vm adds what the cgroup v2 VM tests need)
set -euo pipefail
# libseccomp-dev + pkg-config: nsrun links libseccomp; gcc + libc6-dev: the tests build a static probe;
# tini: its tini-static is `run --init`'s docker-init; podman and containerd drive nsrun in the engine tests (util-linux: script(1) gives ctr a terminal);
# docker-compose 1.29 (with python3-docker 5.0) drives `mydocker system service` in e2e engine_compose.
pkgs=(busybox-static tini iptables iproute2 runc util-linux libseccomp-dev pkg-config libc6-dev gcc podman containerd docker-compose)
[ "${1:-}" = --vm ] && pkgs+=(qemu-system-x86 linux-image-amd64 cpio)  # not qemu-utils: bookworm-backports qemu-utils breaks qemu-system 7.2, apt replaces it
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The docker CLI client (tests of `mydocker system service`); no daemon is started.
command -v docker >/dev/null || missing+=(docker.io)
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
