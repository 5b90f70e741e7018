#!/usr/bin/env bash
# Throw-away single-node Ceph cluster (1 mon, 1 memstore osd, radosgw) serving S3 on loopback.
#
#   deploy/services/ceph-rgw.sh start DIR   # then: set -a; . DIR/env; set +a
#   deploy/services/ceph-rgw.sh stop DIR    # kills the daemons, removes DIR (safe to repeat)
#
# Env: RGW_PORT (7480), S3_ACCESS_KEY (tusgate), S3_SECRET_KEY (tusgate-secret-key),
#      CEPH_MEMSTORE_BYTES (4 GiB; objects live in RAM), CEPH_START_TIMEOUT (90 s).
# Everything (config, data, logs, sockets, pid files) lives under DIR; /etc/ceph is never read.
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

MARK=.tusgate-ceph-rgw

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage

stop() {
  local dir=$1
  [ -d "$dir" ] || { log "$dir does not exist: nothing to stop"; return 0; }
  dir=$(abs_dir "$dir")
  [ -e "$dir/$MARK" ] || [ -z "$(ls -A "$dir")" ] || die "$dir was not made by $0: not touching it"
  # rgw first, then osd, then mon: each exits faster while the ones below it are still up.
  stop_pidfiles "$dir" "$dir"/run/client.rgw.pid
  stop_pidfiles "$dir" "$dir"/run/osd.*.pid
  stop_pidfiles "$dir" "$dir"/run/mon.*.pid
  rm -rf -- "$dir"
  log "stopped and removed $dir"
}

start() {
  local rgw_port=${RGW_PORT:-7480}
  local access=${S3_ACCESS_KEY:-tusgate} secret=${S3_SECRET_KEY:-tusgate-secret-key}
  local fsid osd_uuid mon_v1 mon_v2 id t0

  if [ -d "$1" ] && [ -n "$(ls -A "$1")" ]; then die "$1 is not empty (stop it first)"; fi
  ensure_packages radosgw ceph-mon ceph-osd radosgw ceph-common --no-install-recommends
  require_free_port "$rgw_port"
  t0=$SECONDS
  DEADLINE=$(( SECONDS + ${CEPH_START_TIMEOUT:-90} ))
  DIR=$(abs_dir "$1")
  touch "$DIR/$MARK"
  on_failure failed_start
  mkdir -p "$DIR"/{run,log,mon,osd,rgw,crash}

  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  mon_v2=$(free_port)
  mon_v1=$(free_port)
  [ "$mon_v1" != "$mon_v2" ] || mon_v1=$(free_port)

  cat >"$DIR/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
# without these radosgw loops on "get_initial_auth_request returned -13" under auth none
ms mon client mode = crc
ms client mode = crc
keyring = $DIR/keyring
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
crash dir = $DIR/crash
log to stderr = false
err to stderr = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
# the 1 s default paxos interval makes each pool creation cost ~2 s (bring-up 11 s, first
# CreateBucket/PutObject/CreateMultipartUpload 2 s each); with these, bring-up takes ~2 s
paxos propose interval = 0.05
paxos min wait = 0.01

[mon]
mon data = $DIR/mon/\$id

[osd]
osd data = $DIR/osd/\$id
osd objectstore = memstore
memstore device bytes = ${CEPH_MEMSTORE_BYTES:-4294967296}

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw data = $DIR/rgw
# deleted objects' data is collected at once, not after 2 h: on memstore it stays in RAM
# until then (the OSD grew to 3.2 GB over 32 x 64 MiB written and deleted, and multipart
# writes slowed from ~430 to ~650 ms per 64 MiB as it grew; with these: ~380 MB, ~430 ms)
rgw gc obj min wait = 0
rgw gc processor period = 2
EOF
  local C=(-c "$DIR/ceph.conf")

  log "mon on 127.0.0.1:$mon_v2 (v2) / $mon_v1 (v1)"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]" "$DIR/monmap" >/dev/null
  ceph-mon "${C[@]}" --mkfs -i a --monmap "$DIR/monmap"
  ceph-mon "${C[@]}" -i a
  id=$(timeout "$(left)" ceph "${C[@]}" osd new "$osd_uuid") || die "monitor does not answer"

  log "osd.$id (memstore)"
  mkdir -p "$DIR/osd/$id"
  ceph-osd "${C[@]}" -i "$id" --mkfs --osd-uuid "$osd_uuid"
  timeout "$(left)" ceph-osd "${C[@]}" -i "$id"

  log "radosgw on 127.0.0.1:$rgw_port"
  radosgw "${C[@]}" -n client.rgw
  # creates the rgw pools on first use, so it also waits for the osd
  timeout "$(left)" radosgw-admin "${C[@]}" user create --uid tusgate --display-name tusgate \
    --access-key "$access" --secret-key "$secret" >/dev/null || die "radosgw-admin user create failed"
  wait_until "$(left)" "S3 on :$rgw_port" s3_answers "$rgw_port" ||
    die "radosgw does not answer on 127.0.0.1:$rgw_port"

  cat >"$DIR/env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$rgw_port
AWS_ACCESS_KEY_ID=$access
AWS_SECRET_ACCESS_KEY=$secret
S3_REGION=us-east-1
S3_FORCE_PATH_STYLE=true
EOF
  succeeded
  log "S3 ready at http://127.0.0.1:$rgw_port in $((SECONDS - t0)) s (env in $DIR/env)"
}

# seconds left before CEPH_START_TIMEOUT (at least 1)
left() { local l=$(( DEADLINE - SECONDS )); echo $(( l > 0 ? l : 1 )); }

show_logs() {
  local f
  for f in "$DIR"/log/*.log; do
    [ -s "$f" ] || continue
    echo "----- tail $f" >&2
    tail -n 25 "$f" >&2
  done
}

s3_answers() { curl -fsS --max-time 3 "http://127.0.0.1:$1/" | grep -q '<ListAllMyBucketsResult'; }

# leaves DIR (logs) in place for a look; `stop DIR` removes it
failed_start() {
  show_logs
  stop_pidfiles "$DIR" "$DIR"/run/*.pid
}

case $1 in
  start) start "$2" ;;
  stop) stop "$2" ;;
  *) usage ;;
esac
