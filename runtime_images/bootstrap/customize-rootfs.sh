#!/bin/sh
# mmdebstrap --customize-hook for spaceport/debian-rootfs:bookworm.
#
# Called by spaceport_builder.base_images as `sh customize-rootfs.sh "$1"`, where $1 is the
# chroot directory, after all packages are installed and before mmdebstrap packs the tarball.
# It makes the tree behave like an official debian:bookworm-slim container image.
set -eu
root="$1"

# Docker bind-mounts these at run time: do not ship the build host's copies.
: >"$root/etc/resolv.conf"
echo localhost >"$root/etc/hostname"

# apt inside containers: no translations, no cached .debs (as Debian's docker images do).
cat >"$root/etc/apt/apt.conf.d/docker-no-languages" <<'EOF'
Acquire::Languages "none";
EOF
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF


# apt's binary caches (~70 MB) are rebuilt by the next `apt-get update`.
rm -f "$root"/var/cache/apt/*.bin
