#!/usr/bin/env bash
# Headless Chromium for the dashboard tests (tests/test_api_dashboard.py), from Debian's
# packages: Playwright drives it through executable_path=/usr/bin/chromium and never
# downloads a browser of its own. Needs root (CI runs as root); a no-op when installed.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || true)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core
/usr/bin/chromium --version
