#!/usr/bin/env bash
# Package a built kumo binary: a Debian package and a portable tarball. `make package` passes a
# binary built without the built-in OpenH264 (--no-default-features): the packages fetch
# Cisco's binary at install time instead (packaging/fetch-openh264, packaging/README.md).
# Usage: scripts/package.sh BINARY OUTDIR [VERSION]
#
#   BINARY   the kumo executable (`make package` passes target/release/kumo)
#   OUTDIR   where kumo_VERSION_ARCH.deb and kumo-VERSION-ARCH.tar.gz go (made if missing)
#   VERSION  defaults to Cargo.toml's package version
#
# The .deb is built with plain dpkg-deb (no cargo-deb, no debian/ tree); --root-owner-group
# makes every file root's without fakeroot, so this runs as any user. The binary is stripped
# when `strip` is there (binutils) and copied as it is otherwise. KUMO_MAINTAINER overrides the
# control file's Maintainer; SOURCE_DATE_EPOCH, when set, fixes every file's time (dpkg-deb
# honours it too), so two runs over the same inputs give the same files.
set -euo pipefail
umask 022

usage() {
  echo "usage: $0 BINARY OUTDIR [VERSION]" >&2
  exit 2
}
[ $# -ge 2 ] && [ $# -le 3 ] || usage

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
binary=$1
outdir=$2

if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
  echo "package.sh: $binary is not an executable file; build kumo first (cargo build --release --locked)." >&2
  exit 1
fi
for tool in dpkg-deb dpkg tar gzip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "package.sh: $tool was not found; run this on Debian or Ubuntu (dpkg, tar and gzip are part of every install)." >&2
    exit 1
  fi
done

if [ $# -eq 3 ]; then
  version=$3
else
  # The first `version = "..."` inside [package], or inside [workspace.package] when the
  # package takes the workspace's (`version.workspace = true`).
  version=$(awk '
    /^\[/ { section = $0 }
    /^version[[:space:]]*=[[:space:]]*"/ && (section == "[package]" || section == "[workspace.package]") {
      gsub(/^version[[:space:]]*=[[:space:]]*"|".*$/, ""); found[section] = $0
    }
    END { print ("[package]" in found) ? found["[package]"] : found["[workspace.package]"] }
  ' "$repo/Cargo.toml")
fi
if ! [[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]]; then
  echo "package.sh: version '$version' must start with a digit and use only letters, digits and . + ~ -" >&2
  exit 1
fi
# A semver pre-release (0.2.0-rc.1) becomes 0.2.0~rc.1 for dpkg, which sorts it before 0.2.0
# (a hyphen would be read as a Debian revision instead).
deb_version=${version//-/\~}
arch=$(dpkg --print-architecture)
maintainer=${KUMO_MAINTAINER:-kumo maintainers <maintainers@kumo.invalid>}

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
deb="$outdir/kumo_${deb_version}_${arch}.deb"
tarball="$outdir/kumo-${version}-${arch}.tar.gz"

work=$(mktemp -d "$outdir/.package.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"

# One stripped copy of the binary serves both the .deb and the tarball.
bin="$work/kumo"
if command -v strip >/dev/null 2>&1 && strip --strip-all -o "$bin" "$binary" 2>"$work/strip.log"; then
  stripped="stripped"
else
  if command -v strip >/dev/null 2>&1; then
    echo "package.sh: strip could not read $binary ($(head -n 1 "$work/strip.log")); packaging it unstripped" >&2
  fi
  cp "$binary" "$bin"
  stripped="not stripped"
fi
chmod 0755 "$bin"

# ── the Debian package ─────────────────────────────────────────────────────────────────────────
root="$work/deb"
install -D -m 0755 "$bin" "$root/usr/bin/kumo"
install -D -m 0644 "$repo/packaging/kumo.desktop" "$root/usr/share/applications/kumo.desktop"
install -D -m 0644 "$repo/assets/kumo.png" "$root/usr/share/icons/hicolor/256x256/apps/kumo.png"
install -D -m 0644 "$repo/assets/kumo.svg" "$root/usr/share/icons/hicolor/scalable/apps/kumo.svg"
install -D -m 0644 "$repo/packaging/config.example.toml" "$root/usr/share/doc/kumo/config.example.toml"
install -D -m 0644 "$repo/README.md" "$root/usr/share/doc/kumo/README.md"
install -D -m 0644 "$repo/packaging/kumo-kiosk.service" "$root/lib/systemd/system/kumo-kiosk.service"
install -D -m 0755 "$repo/packaging/fetch-openh264" "$root/usr/lib/kumo/fetch-openh264"

# Libraries the binary links, with the versions its symbols need, from dpkg-shlibdeps (dpkg-dev)
# when it is there; the same names without versions otherwise.
linked=""
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
  mkdir -p "$work/shlibs/debian"
  touch "$work/shlibs/debian/control"
  linked=$(cd "$work/shlibs" && dpkg-shlibdeps -O "$root/usr/bin/kumo" 2>/dev/null | sed -n 's/^shlibs:Depends=//p') || linked=""
fi
depends=${linked:-libc6, libgcc-s1, libstdc++6}
# ALSA and udev are linked too; they are named here as well in case dpkg-shlibdeps left them out.
for lib in libasound2 libudev1; do
  case ", $depends," in
    *", $lib,"* | *", $lib "*) ;;
    *) depends="$depends, $lib" ;;
  esac
done
# Loaded at run time: the Vulkan loader and a driver (Mesa for Intel, AMD and lavapipe, the
# software fallback; NVIDIA's driver provides vulkan-icd too).
depends="$depends, libvulkan1, mesa-vulkan-drivers | vulkan-icd"
# The window system libraries winit loads at run time (Wayland under cage or a desktop, X11
# otherwise); recommended rather than required so a headless `kumo host` can do without them.
# curl and bzip2 for fetch-openh264 (Cisco's OpenH264, downloaded at install time).
recommends="curl, bzip2, libwayland-client0, libwayland-cursor0, libxkbcommon0, libx11-6, libx11-xcb1, libxcursor1, libxrandr2, libxi6, libxkbcommon-x11-0"

installed_kib=$(du -sk "$root" | cut -f1)
mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<EOF
Package: kumo
Version: $deb_version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_kib
Depends: $depends
Recommends: $recommends
Suggests: cage
Section: games
Priority: optional
Description: thin client for cloud game streaming
 kumo receives a game's H.264 video over QUIC, decodes it on its own thread
 and shows it with the lowest latency the machine allows, sending keyboard,
 mouse and gamepad input back. It includes a small reference host, so
 "kumo demo" streams a synthetic game from this machine to itself, and a
 latency lab that measures input to photon stage by stage.
 .
 For kiosks, the kumo-kiosk systemd unit runs "kumo kiosk" full screen under
 the cage compositor on tty1 (see the unit file for setting it up).
EOF
# Cisco's OpenH264 is downloaded on the user's machine when the package is configured, as
# Cisco's licence asks; a failed download does not fail the install (kumo says how to retry).
cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  /usr/lib/kumo/fetch-openh264 || echo "kumo: Cisco's OpenH264 was not downloaded; kumo needs it to stream: run 'sudo /usr/lib/kumo/fetch-openh264' when the network is up." >&2
fi
exit 0
EOF
cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = purge ] || [ "$1" = remove ]; then
  rm -rf /usr/lib/kumo/openh264
  rmdir /usr/lib/kumo 2>/dev/null || true
fi
exit 0
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
  >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
# mktemp and install -D leave directories as the umask says; make sure of 0755 all the same,
# since the package root's mode becomes the mode of / in the archive.
find "$root" -type d -exec chmod 0755 {} +
dpkg-deb --build --root-owner-group "$root" "$deb" >/dev/null

# ── the portable tarball ───────────────────────────────────────────────────────────────────────
top="kumo-$version"
tree="$work/tar/$top"
install -D -m 0755 "$bin" "$tree/bin/kumo"
install -D -m 0755 "$repo/packaging/fetch-openh264" "$tree/bin/fetch-openh264"
for f in kumo.svg kumo.png README.md screenshot-demo.png; do
  install -D -m 0644 "$repo/assets/$f" "$tree/assets/$f"
done
for f in "$repo"/assets/input-scripts/*; do
  install -D -m 0644 "$f" "$tree/assets/input-scripts/$(basename "$f")"
done
for f in README.md config.example.toml kumo.desktop kumo-kiosk.service fetch-openh264; do
  install -D -m 0644 "$repo/packaging/$f" "$tree/packaging/$f"
done
install -D -m 0644 "$repo/README.md" "$tree/README.md"
cat >"$tree/INSTALL.txt" <<EOF
kumo $version ($arch), portable build

kumo runs from this folder as it is:

  ./bin/kumo demo          # a host and the client on this machine, in a window
  ./bin/kumo --help        # every command

It needs glibc (Debian 12 or newer, or a distribution of the same age), ALSA, libudev and a
Vulkan driver. On Debian or Ubuntu:

  sudo apt-get install libasound2 libudev1 libvulkan1 mesa-vulkan-drivers

A package build carries no H.264 code of its own (packaging/README.md says why): run
./bin/fetch-openh264 once to download Cisco's OpenH264 into ~/.local/share/kumo/openh264,
where kumo looks for it (as root, into /usr/lib/kumo/openh264).

To install it for yourself (no root; ~/.local/bin must be on PATH for the menu entry):

  install -Dm755 bin/kumo ~/.local/bin/kumo
  install -Dm644 packaging/kumo.desktop ~/.local/share/applications/kumo.desktop
  install -Dm644 assets/kumo.png ~/.local/share/icons/hicolor/256x256/apps/kumo.png
  install -Dm644 assets/kumo.svg ~/.local/share/icons/hicolor/scalable/apps/kumo.svg

Settings: copy packaging/config.example.toml to ~/.config/kumo/config.toml and uncomment what
you change. A kiosk: packaging/kumo-kiosk.service expects the binary at /usr/bin/kumo and
explains the rest in its comments; on Debian the .deb (kumo_${deb_version}_${arch}.deb) puts
everything in place. More in README.md and packaging/README.md.
EOF
chmod 0644 "$tree/INSTALL.txt"
find "$tree" -type d -exec chmod 0755 {} +
tar_time=()
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  tar_time=(--mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime)
fi
tar -C "$work/tar" --sort=name --owner=0 --group=0 --numeric-owner "${tar_time[@]}" -cf - "$top" \
  | gzip -9 -n >"$tarball"

echo "package.sh: made $deb ($(du -h "$deb" | cut -f1), binary $stripped)"
echo "package.sh: made $tarball ($(du -h "$tarball" | cut -f1))"
