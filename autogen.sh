#!/bin/sh
# Bootstrap a checkout: install the Debian/Ubuntu packages zerolab needs (only those that
# are missing; sudo is used when not root), then generate ./configure.
#
#   ./autogen.sh && ./configure && make -j"$(nproc)"
#
# Set ZL_NO_APT=1 to skip the package step (another distribution, or no root access).
set -e
cd "$(dirname "$0")"

packages="build-essential autoconf automake pkg-config libopenblas-openmp-dev libjansson-dev libdnnl-dev check mpich libmpich-dev liburing-dev libaio-dev libxxhash-dev iproute2"

if [ -z "$ZL_NO_APT" ] && command -v dpkg-query >/dev/null 2>&1; then
    missing=""
    for p in $packages; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        case "$status" in *" installed") ;; *) missing="$missing $p" ;; esac
    done
    if [ -n "$missing" ]; then
        echo "autogen.sh: installing$missing"
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
    fi
fi

autoreconf -fi
