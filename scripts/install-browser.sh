#!/usr/bin/env bash
# Installs Debian's Chromium for the admin's end-to-end tests when it is missing (needs root or sudo).
set -euo pipefail
command -v chromium >/dev/null && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "Installing Debian's chromium for the browser tests ..."
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
