#!/bin/sh
# Installs every Debian package Junction needs to build, test and benchmark.
# Idempotent: installs only what is missing, and runs apt-get update only then.
# chromium is the browser of the dashboard test; its npm package (playwright-core,
# tests/browser) comes from `npm ci` in the Makefile, with the machine's Node.js.
set -eu
PKGS="build-essential pkg-config clang libclang-rt-14-dev libyaml-dev libpcre2-dev \
libcriterion-dev libssl-dev libcrypt-dev openssl python3 python3-pytest curl wrk nginx-light \
libnginx-mod-stream haproxy procps libnghttp2-dev nghttp2-client python3-h2 \
python3-websockets python3-grpcio libjansson-dev python3-jwt python3-cryptography prometheus chromium"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages:$missing (run as root to install them)" >&2
    exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
