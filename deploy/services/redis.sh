#!/usr/bin/env bash
# Throw-away redis-server on loopback, with the durability tusgate needs: AOF
# (appendonly yes, appendfsync everysec), so a restart keeps every upload's state.
#
#   deploy/services/redis.sh start DIR     # then: set -a; . DIR/env; set +a   (REDIS_URL)
#   deploy/services/redis.sh restart DIR   # SIGTERM, then the same server on the same port and data
#   deploy/services/redis.sh stop DIR      # kills it, removes DIR (safe to repeat)
#
# Env: REDIS_PORT (6390), REDIS_START_TIMEOUT (20 s),
#      REDIS_PERSISTENCE (aof | none; none is for tests that need a Redis that forgets).
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

MARK=.tusgate-redis

usage() { echo "usage: $0 start|restart|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage

stop() {
  local dir=$1
  [ -d "$dir" ] || { log "$dir does not exist: nothing to stop"; return 0; }
  dir=$(abs_dir "$dir")
  [ -e "$dir/$MARK" ] || [ -z "$(ls -A "$dir")" ] || die "$dir was not made by $0: not touching it"
  stop_pidfiles "$dir" "$dir/redis.pid"
  rm -rf -- "$dir"
  log "stopped and removed $dir"
}

start() {
  local port=${REDIS_PORT:-6390}
  if [ -d "$1" ] && [ -n "$(ls -A "$1")" ]; then die "$1 is not empty (stop it first)"; fi
  ensure_packages redis-server redis-server
  require_free_port "$port"
  DIR=$(abs_dir "$1")
  touch "$DIR/$MARK"
  on_failure failed_start
  case ${REDIS_PERSISTENCE:-aof} in
    aof) echo "--appendonly yes --appendfsync everysec" >"$DIR/persistence" ;;
    none) echo "--appendonly no" >"$DIR/persistence" ;;
    *) die "REDIS_PERSISTENCE must be aof or none" ;;
  esac
  echo "$port" >"$DIR/port"
  launch
  echo "REDIS_URL=redis://127.0.0.1:$port" >"$DIR/env"
  succeeded
  log "redis ready at redis://127.0.0.1:$port (env in $DIR/env)"
}

# redis-server loads no config file: every setting is on the command line.
launch() {
  local port
  port=$(cat "$DIR/port")
  # shellcheck disable=SC2046 # the persistence flags are words
  redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
    --daemonize yes --pidfile "$DIR/redis.pid" --dir "$DIR" --logfile "$DIR/redis.log" \
    --save '' $(cat "$DIR/persistence")
  wait_until "${REDIS_START_TIMEOUT:-20}" "redis PING on :$port" pong "$port" ||
    die "redis does not answer on 127.0.0.1:$port"
}

restart() {
  [ -e "$1/$MARK" ] || die "$1 was not made by $0 start"
  DIR=$(abs_dir "$1")
  stop_pidfiles "$DIR" "$DIR/redis.pid"
  launch
  log "redis restarted on :$(cat "$DIR/port") with the data in $DIR"
}

pong() { [ "$(redis-cli -h 127.0.0.1 -p "$1" ping)" = PONG ]; }

failed_start() {
  tail -n 20 "$DIR/redis.log" >&2 2>/dev/null || true
  stop_pidfiles "$DIR" "$DIR/redis.pid"
}

case $1 in
  start) start "$2" ;;
  stop) stop "$2" ;;
  restart) restart "$2" ;;
  *) usage ;;
esac
