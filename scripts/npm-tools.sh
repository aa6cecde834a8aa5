#!/usr/bin/env bash
# Install the Node tools the interface tests drive, pinned by package.json/package-lock.json:
#   - @modelcontextprotocol/inspector   (MCP Inspector CLI: tools/list, tools/call)
#   - @modelcontextprotocol/conformance (the official MCP conformance suite)
#   - node@22 (both need Node >= 22; the `node` package ships that runtime as a registry package)
# into ./node_modules. npm's cache (NPM_CONFIG_CACHE, default ~/.npm) makes reruns offline-fast.
# Usage: scripts/npm-tools.sh            (idempotent: skips the install when the lock is unchanged)
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=node_modules/.mosaic-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x node_modules/.bin/node ]] \
    && node_modules/.bin/node --version | grep -q '^v22\.'; then
  echo "npm tools already installed ($(node_modules/.bin/node --version))"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "npm-tools: npm is not installed (apt-get install -y nodejs npm)" >&2
    exit 1
  fi
fi

npm ci --no-audit --no-fund --prefer-offline

node22=node_modules/.bin/node
if ! "$node22" --version | grep -q '^v22\.'; then
  echo "npm-tools: node_modules/.bin/node is not Node 22 (got: $("$node22" --version 2>&1 || true))" >&2
  exit 1
fi
# Both CLIs must start under Node 22.
"$node22" node_modules/@modelcontextprotocol/conformance/dist/index.js --help >/dev/null
"$node22" node_modules/.bin/mcp-inspector --cli --help >/dev/null
echo "$want" > "$stamp"
echo "npm tools installed: node $("$node22" --version), inspector, conformance"
