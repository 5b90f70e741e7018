#!/usr/bin/env bash
# Throw-away nginx on loopback, reverse proxy (round robin) for tusgate instances.
#
#   UPSTREAMS=127.0.0.1:3001,127.0.0.1:3002 deploy/services/nginx.sh start DIR
#   deploy/services/nginx.sh stop DIR    # kills it, removes DIR (safe to repeat)
#
# Env: UPSTREAMS (required, comma-separated host:port), NGINX_PORT (8088),
#      NGINX_TEMPLATE (deploy/nginx/tusgate.conf.template), NGINX_START_TIMEOUT (20 s).
# Writes DIR/env with NGINX_URL. The upstreams need not be up yet (nginx answers 502 meanwhile).
set -euo pipefail
HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

MARK=.tusgate-nginx

usage() { echo "usage: UPSTREAMS=host:port,host:port $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage

stop() {
  local dir=$1
  [ -d "$dir" ] || { log "$dir does not exist: nothing to stop"; return 0; }
  dir=$(abs_dir "$dir")
  [ -e "$dir/$MARK" ] || [ -z "$(ls -A "$dir")" ] || die "$dir was not made by $0: not touching it"
  stop_pidfiles "$dir" "$dir/nginx.pid"   # SIGTERM: fast shutdown of master and workers
  rm -rf -- "$dir"
  log "stopped and removed $dir"
}

start() {
  local port=${NGINX_PORT:-8088} template=${NGINX_TEMPLATE:-$HERE/../nginx/tusgate.conf.template}
  local servers='' u conf
  [ -n "${UPSTREAMS:-}" ] || die "UPSTREAMS is empty (want host:port[,host:port...])"
  for u in ${UPSTREAMS//,/ }; do
    [[ "$u" =~ ^[A-Za-z0-9.:_-]+:[0-9]+$ ]] || die "bad upstream '$u' (want host:port)"
    servers+="        server $u max_fails=1 fail_timeout=5s;"$'\n'
  done
  [ -r "$template" ] || die "template $template not found"
  if [ -d "$1" ] && [ -n "$(ls -A "$1")" ]; then die "$1 is not empty (stop it first)"; fi
  ensure_packages nginx nginx
  require_free_port "$port"
  DIR=$(abs_dir "$1")
  touch "$DIR/$MARK"
  on_failure failed_start
  mkdir -p "$DIR/tmp"

  shopt -u patsub_replacement 2>/dev/null || true  # bash 5.2: '&' in a replacement is literal
  conf=$(<"$template")
  conf=${conf//@@UPSTREAM_SERVERS@@/${servers%$'\n'}}
  conf=${conf//@@LISTEN@@/127.0.0.1:$port}
  conf=${conf//@@DIR@@/$DIR}
  printf '%s\n' "$conf" >"$DIR/nginx.conf"

  local N=(nginx -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/error.log")
  "${N[@]}" -t -q || die "nginx rejects $DIR/nginx.conf"
  "${N[@]}"
  wait_until "${NGINX_START_TIMEOUT:-20}" "nginx on :$port" \
    curl -fsS --max-time 2 "http://127.0.0.1:$port/.nginx-health" ||
    die "nginx does not answer on 127.0.0.1:$port"

  echo "NGINX_URL=http://127.0.0.1:$port" >"$DIR/env"
  succeeded
  log "nginx ready at http://127.0.0.1:$port -> $UPSTREAMS (env in $DIR/env)"
}

failed_start() {
  tail -n 20 "$DIR/error.log" >&2 2>/dev/null || true
  stop_pidfiles "$DIR" "$DIR/nginx.pid"
}

case $1 in
  start) start "$2" ;;
  stop) stop "$2" ;;
  *) usage ;;
esac
