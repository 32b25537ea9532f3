#!/usr/bin/env bash
# Builds the default image, `busybox:latest`, as a `docker save` tarball
# (manifest.json, <config-digest>.json, <layer-digest>/layer.tar) from Debian's
# static busybox. Deterministic: the same busybox gives the same digests.
#   scripts/mkimage-busybox.sh [OUT]     (default: build/busybox.tar)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/build/busybox.tar}
bb=/bin/busybox
[ -x "$bb" ] || { echo "mkimage-busybox: $bb missing: apt-get install -y busybox-static" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,var,proc,sys,dev}
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
cp "$bb" "$root/bin/busybox"
# One symlink per applet, at the path busybox itself reports.
for path in $("$bb" --list-full); do
  [ "$path" = bin/busybox ] && continue
  mkdir -p "$root/$(dirname "$path")"
  ln -sf /bin/busybox "$root/$path"
done
printf 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n' > "$root/etc/group"
echo busybox > "$root/etc/hostname"

mkdir -p "$work/img"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/layer.tar" $(ls -A "$root")
layer=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mkdir -p "$work/img/$layer"
mv "$work/layer.tar" "$work/img/$layer/layer.tar"

path_env='PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
cat > "$work/config.json" <<JSON
{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":["$path_env"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:$layer"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"scripts/mkimage-busybox.sh"}]}
JSON
cfg=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$work/img/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["busybox:latest"],"Layers":["%s/layer.tar"]}]\n' "$cfg" "$layer" > "$work/img/manifest.json"
printf '{"busybox":{"latest":"%s"}}\n' "$layer" > "$work/img/repositories"

mkdir -p "$(dirname "$out")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/img" -cf "$out.tmp" $(ls -A "$work/img")
mv "$out.tmp" "$out"
echo "$out"
