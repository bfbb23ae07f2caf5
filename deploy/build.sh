#!/usr/bin/env bash
# Builds the tailwise image from a clean context: only what the functions
# need (deno.json, deno.lock, shared/, functions/, deploy/) plus, when deno is
# on this machine, a pre-filled dependency cache (.deno_dir), so the build
# needs no network.
#
#   deploy/build.sh [-t TAG] [--base DENO_IMAGE] [--online]
#
# -t TAG      image name (default tailwise:latest)
# --base IMG  the Deno base image (default the Dockerfile's pinned denoland/deno)
# --online    skip the pre-filled cache: the build fetches its dependencies
# DOCKER_HOST and the other docker CLI variables are honoured.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tag=tailwise:latest
base=""
online=0
while [ $# -gt 0 ]; do
  case "$1" in
    -t) tag=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --online) online=1; shift ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done

ctx=$(mktemp -d "${TMPDIR:-/tmp}/tailwise-build-XXXXXX")
trap 'rm -rf "$ctx"' EXIT
cp -a "$repo/deno.json" "$repo/deno.lock" "$repo/shared" "$repo/functions" "$repo/deploy" "$ctx/"

args=(-f "$ctx/deploy/Dockerfile" -t "$tag")
[ -n "$base" ] && args+=(--build-arg "DENO_IMAGE=$base")
if [ "$online" = 0 ] && command -v deno >/dev/null 2>&1; then
  shopt -s nullglob
  (cd "$ctx" && DENO_DIR="$ctx/.deno_dir" DENO_NO_UPDATE_CHECK=1 \
    deno cache --frozen functions/*/main.ts deploy/*.ts)
fi
docker build "${args[@]}" "$ctx"
