# Helpers shared by the service scripts in this folder. Source it; do not run it.
# Every daemon a script starts writes a pid file under its DIR; stop_pidfiles only
# signals a pid that is still ours (see our_pid), so a stale or recycled pid is never hit.

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ensure_packages CMD PKG... : apt-get install PKG... unless CMD is on PATH.
ensure_packages() {
  local cmd=$1; shift
  command -v "$cmd" >/dev/null 2>&1 && return 0
  local sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  log "installing $* (missing: $cmd)"
  local t0=$SECONDS out
  out=$(mktemp)
  if ! { $sudo apt-get -o DPkg::Lock::Timeout=600 update &&
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y "$@"; } >"$out" 2>&1; then
    tail -n 30 "$out" >&2; rm -f "$out"
    die "apt-get install $* failed"
  fi
  rm -f "$out"
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after installing $*"
  log "installed $* in $((SECONDS - t0)) s"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

require_free_port() {
  port_in_use "$1" && die "port 127.0.0.1:$1 is already in use"
  return 0
}

# free_port: a port on 127.0.0.1 nobody listens on (racy by nature; good enough for tests).
free_port() {
  local p
  for _ in {1..200}; do
    p=$(( 20000 + RANDOM % 20000 ))
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  die "no free port found"
}

# wait_until SECONDS DESCRIPTION CMD... : poll CMD every 0.5 s, return 1 on timeout.
wait_until() {
  local limit=$1 what=$2; shift 2
  local deadline=$(( SECONDS + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { log "timed out after ${limit} s waiting for $what"; return 1; }
    sleep 0.5
  done
}

# our_pid PIDFILE DIR : print the pid in PIDFILE if it is alive and is ours: its command
# line names a file in DIR (ceph, nginx) or its working directory is DIR (redis renames itself).
our_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && is_alive "$pid" || return 1
  if [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$2" ] ||
    tr "\0" " " 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$2/"; then
    echo "$pid"
  else
    return 1
  fi
}

# is_alive PID : running (a zombie left unreaped by a non-reaping pid 1 counts as dead).
is_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# stop_pidfiles DIR PIDFILE... : SIGTERM the live ones, wait up to 15 s, then SIGKILL.
stop_pidfiles() {
  local dir=$1 f pid pids=(); shift
  for f in "$@"; do
    pid=$(our_pid "$f" "$dir") && pids+=("$pid")
  done
  [ "${#pids[@]}" -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local deadline=$(( SECONDS + 15 )) alive
  while :; do
    alive=()
    for pid in "${pids[@]}"; do is_alive "$pid" && alive+=("$pid"); done
    [ "${#alive[@]}" -gt 0 ] || return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "killing ${alive[*]} (did not exit on SIGTERM)"
      kill -KILL "${alive[@]}" 2>/dev/null || true
      sleep 0.2
      return 0
    fi
    sleep 0.1
  done
}

# on_failure CMD... : run CMD if the script exits non-zero or is interrupted; succeeded disarms it.
on_failure() {
  ON_FAILURE=("$@")
  trap '_on_exit $?' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
_on_exit() {
  trap - EXIT
  if [ "$1" -ne 0 ]; then
    log "start failed (exit $1): cleaning up"
    "${ON_FAILURE[@]}" || true
  fi
  exit "$1"
}
succeeded() { trap - EXIT INT TERM; }

# abs_dir DIR : absolute path of DIR (created if missing).
abs_dir() {
  mkdir -p -- "$1"
  (cd -- "$1" && pwd -P)
}
