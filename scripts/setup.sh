#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine (as root) and runs a first
# container: installs the packages, builds the tools (release), links them into
# /usr/local/bin, builds and loads the default busybox image, and says hello.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "setup: run as root" >&2; exit 1; }
scripts/deps.sh
command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }
cargo build --release --workspace --bins
for t in nsrun cgctl layerfs ipam netbr ctrstate mydocker; do
  ln -sf "$PWD/target/release/$t" /usr/local/bin/$t
done
scripts/install-completions.sh /usr/local/bin/mydocker
# Restart policies across a reboot: a boot unit runs `mydocker system boot`
# (only where systemd runs the machine: /run/systemd/system is its mark).
if [ -d /run/systemd/system ]; then
  install -m 644 scripts/mydocker-boot.service /etc/systemd/system/mydocker-boot.service
  systemctl daemon-reload
  systemctl enable mydocker-boot.service
else
  echo "setup: systemd is not PID 1: run 'mydocker system boot' at boot yourself" >&2
fi
scripts/mkimage-busybox.sh build/busybox.tar >/dev/null
mydocker load -i build/busybox.tar
mydocker run --rm busybox echo "Hello from a mydocker container"
