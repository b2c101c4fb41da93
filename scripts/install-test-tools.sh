#!/usr/bin/env bash
# What the tests need beyond npm, from Debian's packages, installed only when missing: chromium
# (Swagger UI is tested in a real browser, never a downloaded one), and curl and HTTPie (the README's
# walkthroughs are run as written). Needs root (or sudo) the first time; a failed install fails.
set -euo pipefail
if [ -x /usr/bin/chromium ] && command -v http >/dev/null && command -v curl >/dev/null; then exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
echo "installing chromium, httpie and curl from Debian's packages"
$SUDO apt-get update -o DPkg::Lock::Timeout=600
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -o DPkg::Lock::Timeout=600 chromium httpie curl
