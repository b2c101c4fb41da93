#!/usr/bin/env bash
# What the tests need beyond npm, from Debian's packages, installed only when missing: chromium
# (Swagger UI is tested in a real browser, never a downloaded one), curl and HTTPie (the README's
# walkthroughs are run as written), and redis-server with redis-cli (the tests start their own Redis
# Cluster on spare ports). Needs root (or sudo) the first time; a failed install fails.
set -euo pipefail
if [ -x /usr/bin/chromium ] && command -v http >/dev/null && command -v curl >/dev/null &&
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
echo "installing chromium, httpie, curl, redis-server and redis-tools from Debian's packages"
$SUDO apt-get update -o DPkg::Lock::Timeout=600
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -o DPkg::Lock::Timeout=600 \
  chromium httpie curl redis-server redis-tools
for tool in redis-server redis-cli http curl; do
  command -v "$tool" >/dev/null || { echo "install-test-tools: $tool still missing" >&2; exit 1; }
done
[ -x /usr/bin/chromium ] || { echo "install-test-tools: /usr/bin/chromium still missing" >&2; exit 1; }
