#!/usr/bin/env bash
# The browser end-to-end tests: builds the npm package (scripts/build-web.sh) and the
# binaries, installs Debian's chromium and playwright-core when missing (never downloads a
# browser), then runs web-demo/tests with node's test runner. Screenshots of each scenario
# are saved in web-demo/test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_install chromium
have node && have npm || apt_install nodejs npm
./scripts/build-web.sh
cargo build -q -p concord-server -p concord-cli
export CARGO_TARGET_DIR="$(realpath "${CARGO_TARGET_DIR:-target}")"
cd web-demo
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
# Never download a browser: playwright-core drives /usr/bin/chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
rm -rf test-artifacts
node --test --test-concurrency=1 tests/
echo "screenshots: web-demo/test-artifacts/"
