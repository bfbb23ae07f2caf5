#!/bin/sh
# The image's entrypoint: `entrypoint.sh <function> [args...]` runs
# functions/<function>/main.ts (or a deploy tool: influx_init, healthcheck)
# with the permission flags deploy/permissions.json gives it, never -A.
set -eu
name="${1:-}"
if [ -z "$name" ]; then
  echo "usage: entrypoint.sh <collect|ingest|score|train|api|socket_proxy|influx_init|healthcheck> [args...]" >&2
  exit 64
fi
shift
cd /app
run=$(deno run --cached-only --frozen --no-prompt --allow-read=/app/deploy/permissions.json --allow-env \
  /app/deploy/permissions.ts "$name" "$@")
# $run is flags and the main module, none with spaces: split on purpose.
# shellcheck disable=SC2086
exec deno run $run "$@"
