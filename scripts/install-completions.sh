#!/usr/bin/env bash
# Installs mydocker's shell completions (bash, zsh, fish) and man pages from
# the given mydocker binary. Idempotent: every file is written to a temp
# name and renamed over the old one. PREFIX (default /) roots every path,
# for a test or a package build.
set -euo pipefail
bin=${1:-mydocker}
root=${PREFIX:-}
install_out() { # DEST CMD...: CMD's output becomes DEST
  local dest=$root$1; shift
  mkdir -p "$(dirname "$dest")"
  "$@" >"$dest.tmp.$$"
  chmod 644 "$dest.tmp.$$"
  mv -f "$dest.tmp.$$" "$dest"
}
install_out /usr/share/bash-completion/completions/mydocker "$bin" completion bash
install_out /usr/share/zsh/vendor-completions/_mydocker "$bin" completion zsh
install_out /usr/share/fish/vendor_completions.d/mydocker.fish "$bin" completion fish
man=$root/usr/local/share/man/man1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" _man "$tmp"
mkdir -p "$man"
for f in "$tmp"/*.1; do
  install -m 644 "$f" "$man/$(basename "$f")"
done
# The man index is the system's: refreshed only for a real install.
if [ -z "$root" ] && command -v mandb >/dev/null; then mandb -q >/dev/null 2>&1 || true; fi
