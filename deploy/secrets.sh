#!/usr/bin/env bash
# tailwise's Docker secrets, made on a swarm manager without touching disk:
# a random password per Redis role (admin, collect, ingest, score, train,
# api), the Redis ACL file rendered from deploy/redis/users.acl with their
# SHA-256, the InfluxDB password and the API token, each piped to
# `docker secret create`.
#
#   deploy/secrets.sh create   create them (does nothing if they exist)
#   deploy/secrets.sh acl DIR  print the ACL for the passwords in
#                              DIR/redis_<role>_password (for tests, rotation)
#
# DOCKER_HOST and the other docker CLI variables are honoured. Secret names
# start with ${SECRET_PREFIX:-tailwise_}, as deploy/stack.yml expects.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=${SECRET_PREFIX:-tailwise_}
roles="admin collect ingest score train api"

password() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# render NAME=PASSWORD...: the ACL on stdout.
render() {
  local sed_args=()
  for pair in "$@"; do
    sed_args+=(-e "s/{{${pair%%=*}}}/#$(sha "${pair#*=}")/g")
  done
  grep -v '^#' "$here/redis/users.acl" | grep -v '^[[:space:]]*$' | sed "${sed_args[@]}"
}

case "${1:-}" in
  acl)
    dir=${2:?usage: secrets.sh acl DIR}
    pairs=()
    for r in $roles; do pairs+=("$r=$(tr -d '\n' <"$dir/redis_${r}_password")"); done
    render "${pairs[@]}"
    ;;
  create)
    if docker secret inspect "${prefix}redis_acl" >/dev/null 2>&1; then
      echo "secrets.sh: ${prefix}redis_acl exists; leaving the secrets as they are" >&2
      exit 0
    fi
    pairs=()
    for r in $roles; do
      pw=$(password)
      pairs+=("$r=$pw")
      printf '%s' "$pw" | docker secret create "${prefix}redis_${r}_password" - >/dev/null
    done
    render "${pairs[@]}" | docker secret create "${prefix}redis_acl" - >/dev/null
    password | docker secret create "${prefix}influx_password" - >/dev/null
    password | docker secret create "${prefix}api_token" - >/dev/null
    echo "secrets.sh: created ${prefix}redis_acl, ${prefix}redis_<role>_password," \
      "${prefix}influx_password, ${prefix}api_token" >&2
    ;;
  *)
    echo "usage: secrets.sh create | acl DIR" >&2
    exit 64
    ;;
esac
