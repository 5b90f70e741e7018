#!/bin/sh
# nginx in a container (deploy/compose.yaml, official nginx image): renders the one nginx
# template, deploy/nginx/tusgate.conf.template, the way deploy/services/nginx.sh does, then
# runs nginx in the foreground as the container's main process.
#
#   UPSTREAMS=tusgate-1:1080,tusgate-2:1080 sh nginx-entrypoint.sh [nginx options, e.g. -t]
#
# Env: UPSTREAMS (required, comma-separated host:port), NGINX_LISTEN (8080; a port or
#      host:port), NGINX_TEMPLATE (/etc/tusgate/nginx/tusgate.conf.template),
#      NGINX_DIR (/tmp/tusgate-nginx: pid, temp files; its logs are the container's stdout
#      and stderr), NGINX_USER (nginx: the worker user of the official image).
# Beyond nginx.sh's placeholders it changes two lines of the template: `daemon on;` becomes
# `daemon off;` (the container lives as long as nginx's master) and `user root;` becomes
# `user $NGINX_USER;`. It stops if either line is not in the template as expected.
# POSIX sh, sed and awk only: the nginx images (Debian and Alpine) have no bash.
set -eu

template=${NGINX_TEMPLATE:-/etc/tusgate/nginx/tusgate.conf.template}
dir=${NGINX_DIR:-/tmp/tusgate-nginx}
listen=${NGINX_LISTEN:-8080}
user=${NGINX_USER:-nginx}

die() { echo "nginx-entrypoint: ERROR: $*" >&2; exit 1; }

[ -n "${UPSTREAMS:-}" ] || die "UPSTREAMS is empty (want host:port[,host:port...])"
[ -r "$template" ] || die "template $template not found"
servers=$(printf '%s\n' "$UPSTREAMS" | tr ',' '\n' | awk '
  NF == 0 { next }
  $0 !~ /^[A-Za-z0-9.:_-]+:[0-9]+$/ { print "bad upstream \"" $0 "\" (want host:port)" > "/dev/stderr"; bad = 1; exit }
  { printf "        server %s max_fails=1 fail_timeout=5s;\n", $0 }
  END { if (bad) exit 1 }') || exit 1
[ -n "$servers" ] || die "UPSTREAMS names no server"
case $listen in *[!A-Za-z0-9.:_-]* | '') die "bad NGINX_LISTEN '$listen'" ;; esac
case $dir in *[!A-Za-z0-9./_-]* | '') die "bad NGINX_DIR '$dir'" ;; esac
case $user in *[!A-Za-z0-9._-]* | '') die "bad NGINX_USER '$user'" ;; esac
grep -qx 'daemon on;' "$template" || die "$template has no line 'daemon on;' to turn off"
grep -qx 'user root;' "$template" || die "$template has no line 'user root;' to replace"

mkdir -p "$dir/tmp"
# logs to the container's output, as the official image does for /var/log/nginx
ln -sf /dev/stdout "$dir/access.log"
ln -sf /dev/stderr "$dir/error.log"

SERVERS=$servers awk -v dir="$dir" -v listen="$listen" -v user="$user" '
  function swap(s, from, to,    out, i) {
    out = ""
    while ((i = index(s, from)) > 0) { out = out substr(s, 1, i - 1) to; s = substr(s, i + length(from)) }
    return out s
  }
  $0 == "@@UPSTREAM_SERVERS@@" { print ENVIRON["SERVERS"]; next }
  $0 == "daemon on;" { print "daemon off;"; next }
  $0 == "user root;" { print "user " user ";"; next }
  { print swap(swap($0, "@@LISTEN@@", listen), "@@DIR@@", dir) }
' "$template" >"$dir/nginx.conf"
left=$(grep -E '@@(UPSTREAM_SERVERS|LISTEN|DIR)@@' "$dir/nginx.conf" || true)
[ -z "$left" ] || die "placeholders left in $dir/nginx.conf: $left"

echo "nginx-entrypoint: listening on $listen, upstreams $UPSTREAMS" >&2
exec nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" "$@"
