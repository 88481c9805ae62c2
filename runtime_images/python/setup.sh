#!/bin/sh
# Runs once, as root, inside `docker build` of spaceport/python (see ./Dockerfile).
# POSIX sh on purpose: the parent may be Spaceport's Debian rootfs, python:X-slim or an
# Ubuntu-based nvidia/cuda image. Usage: sh setup.sh PYTHON_VERSION
set -eu
pyver="$1"

# 1. OS packages the contract needs, installed only when the parent lacks them (registry
#    parents; the offline rootfs already has all of them, so this needs no network there).
missing=""
command -v tini >/dev/null 2>&1 || missing="$missing tini"
command -v update-ca-certificates >/dev/null 2>&1 || missing="$missing ca-certificates"
command -v useradd >/dev/null 2>&1 || missing="$missing passwd"
if [ -n "$missing" ]; then
    apt-get update
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
    rm -rf /var/lib/apt/lists/*
fi
[ -x /usr/bin/tini ] || ln -s "$(command -v tini)" /usr/bin/tini

# 2. Trust the operator's CA bundle (split into one cert per file by the builder), so that
#    /etc/ssl/certs/ca-certificates.crt contains it and survives later update-ca-certificates.
extra=/usr/local/share/ca-certificates/spaceport
bundle=/etc/ssl/certs/ca-certificates.crt
if [ -f "$bundle" ] && ls "$extra"/*.crt >/dev/null 2>&1; then
    # Drop the certs the parent already trusts (the host bundle repeats Debian's roots).
    awk -v bundle="$bundle" '
        /-----BEGIN/ { body = ""; next }
        /-----END/ { if (FILENAME == bundle) known[body] = 1; else if (body in known) print FILENAME; next }
        { body = body $0 }
    ' "$bundle" "$extra"/*.crt | xargs -r rm -f
fi
if ls "$extra"/*.crt >/dev/null 2>&1; then
    update-ca-certificates >/dev/null
    echo "trusted $(ls "$extra"/*.crt | wc -l) extra CA cert(s)"
fi

# 3. user `user`, uid/gid 1000, HOME /home/user (renaming an existing uid 1000, e.g. Ubuntu's
#    `ubuntu`, so the contract holds on any parent).
if getent group 1000 >/dev/null; then
    old_group="$(getent group 1000 | cut -d: -f1)"
    [ "$old_group" = user ] || groupmod -n user "$old_group"
else
    groupadd -g 1000 user
fi
if getent passwd 1000 >/dev/null; then
    old_user="$(getent passwd 1000 | cut -d: -f1)"
    if [ "$old_user" != user ]; then
        usermod -l user -d /home/user -m -s /bin/bash "$old_user"
    fi
else
    useradd -m -u 1000 -g 1000 -d /home/user -s /bin/bash user
fi
mkdir -p /home/user/app
chown -R 1000:1000 /home/user

# 4. The virtualenv every app installs into. The parent's python$pyver with its bundled
#    ensurepip needs no network; a parent without that interpreter gets a uv-managed CPython
#    (downloads python-build-standalone: needs network, used only with registry parents).
if command -v "python$pyver" >/dev/null 2>&1 && "python$pyver" -m venv /opt/venv; then
    :
else
    echo "python$pyver with venv not in the parent image: using uv python install"
    rm -rf /opt/venv
    export UV_PYTHON_INSTALL_DIR=/opt/python
    uv python install "$pyver"
    uv venv --seed --python "$pyver" /opt/venv
    chmod -R a+rX /opt/python
fi
/opt/venv/bin/python -c "import sys; v = '%d.%d' % sys.version_info[:2]; assert v == '$pyver', v"
/opt/venv/bin/python -m pip --version
chown -R 1000:1000 /opt/venv

rm -rf /root/.cache /tmp/* 2>/dev/null || true
