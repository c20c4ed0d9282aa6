#!/usr/bin/env bash
# A throwaway S3 server for tests: single-node Ceph (1 mon + 1 memstore OSD, no mgr) and radosgw
# serving S3 on 127.0.0.1:PORT. Debian packages only (radosgw ceph-mon ceph-osd); no docker, no
# systemd; everything (config, logs, pid files, sockets) lives under DIR. Tested with Ceph 16.2.
#
#   radosgw-local.sh start  [DIR] [PORT] [MON_PORT] [MON_V1_PORT]
#   radosgw-local.sh stop   [DIR]
#   radosgw-local.sh status [DIR]
#
# Arguments win over the environment, which wins over the defaults:
#   RGW_DIR          state directory        (default ${TMPDIR:-/tmp}/idphoto-radosgw; wiped by start)
#   RGW_PORT         S3 (beast) port        (default 7480)
#   RGW_BIND         S3 listen address      (default 127.0.0.1; another host's address in a
#                    network namespace, for bench.hosts)
#   RGW_MON_PORT     monitor msgr2 port     (default 3300, or a free port if 3300 is taken)
#   RGW_MON_V1_PORT  monitor legacy port    (default 6789, or a free port if 6789 is taken)
#   S3_ACCESS_KEY / S3_SECRET_KEY           (default LOCALACCESSKEY / LOCALSECRETKEY)
#   RGW_START_TIMEOUT seconds to wait for each daemon (default 120)
#   RGW_STOP_GRACE   seconds the OSD and monitor get after SIGTERM before SIGKILL (default 10)
# A port given explicitly that is already in use is an error (a leftover server, or another one).
# On success `start` prints S3_ENDPOINT=..., S3_ACCESS_KEY=..., S3_SECRET_KEY=... (also written to
# DIR/s3.env). `stop` terminates every daemon started from DIR (pid files, then any process still
# running with DIR/ceph.conf), escalating to SIGKILL (radosgw after 2 s, the others after RGW_STOP_GRACE).
#
# Why the odd settings (see also ../shared/s3-local.md): with auth 'none' between the daemons
# radosgw must be told ms_*client_mode = crc and --no-mon-config, or it loops on
# "get_initial_auth_request returned -13" for 300 s. S3 request signing stays fully enforced.
set -euo pipefail

cmd=${1:-start}
C=${2:-${RGW_DIR:-${TMPDIR:-/tmp}/idphoto-radosgw}}
C=${C%/}
AK=${S3_ACCESS_KEY:-LOCALACCESSKEY}
SK=${S3_SECRET_KEY:-LOCALSECRETKEY}
WAIT=${RGW_START_TIMEOUT:-120}
BIND=${RGW_BIND:-127.0.0.1}
DAEMONS=(client.rgw.a osd.0 mon.a)

log() { echo "radosgw-local: $*" >&2; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

pidof_daemon() { [ -f "$C/run/$1.pid" ] && cat "$C/run/$1.pid" 2>/dev/null || true; }

# PIDs of every process whose command line names this instance's ceph.conf (exact argument).
instance_pids() {
  local p arg
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    while IFS= read -r -d '' arg; do
      if [ "$arg" = "$C/ceph.conf" ]; then echo "${p#/proc/}"; break; fi
    done < "$p/cmdline" 2>/dev/null || true
  done
}

stop_group() {  # stop_group NAME:PID:GRACE...: TERM all at once; KILL each still alive after GRACE s
  local item n p grace waited=0 left rc=0 killed=" "
  [ $# -eq 0 ] && return 0
  for item in "$@"; do p=${item#*:}; kill -TERM "${p%%:*}" 2>/dev/null || true; done
  while :; do
    left=0
    for item in "$@"; do
      n=${item%%:*}; p=${item#*:}; grace=${p#*:}; p=${p%%:*}
      alive "$p" || continue
      left=1
      if [ "$waited" -ge $((grace * 10)) ] && [[ "$killed" != *" $p "* ]]; then
        log "$n (pid $p) still running ${grace}s after SIGTERM; sending SIGKILL"
        kill -KILL "$p" 2>/dev/null || true
        killed+="$p "
      fi
    done
    [ $left -eq 0 ] && break
    [ "$waited" -ge $((STOP_GRACE * 10 + 50)) ] && break
    sleep 0.1; waited=$((waited + 1))
  done
  for item in "$@"; do
    n=${item%%:*}; p=${item#*:}; p=${p%%:*}
    if alive "$p"; then log "could not kill $n (pid $p)"; rc=1; else log "stopped $n (pid $p)"; fi
  done
  return $rc
}

# radosgw holds no state but waits for its clients' idle keep-alive connections, so it gets a
# short grace; the OSD and monitor get RGW_STOP_GRACE (default 10 s). The monitor goes last: an
# OSD stopping while the monitor is gone waits for it (7 s instead of 2).
STOP_GRACE=${RGW_STOP_GRACE:-10}
stop_all() {
  local n p first=() mon=() rc=0
  p=$(pidof_daemon client.rgw.a); alive "$p" && first+=("client.rgw.a:$p:2")
  p=$(pidof_daemon osd.0); alive "$p" && first+=("osd.0:$p:$STOP_GRACE")
  p=$(pidof_daemon mon.a); alive "$p" && mon+=("mon.a:$p:$STOP_GRACE")
  # Daemons that died before writing a pid file, or radosgw-admin/ceph clients left hanging.
  for p in $(instance_pids); do
    [[ " ${first[*]} ${mon[*]} " == *":$p:"* ]] || first+=("process:$p:$STOP_GRACE")
  done
  stop_group "${first[@]}" || rc=1
  stop_group "${mon[@]}" || rc=1
  rm -f "$C"/run/*.pid 2>/dev/null || true
  return $rc
}

tail_log() {  # tail_log NAME: the end of a daemon's log and of the set-up output
  local f="$C/log/$1.log"
  [ -s "$f" ] && { echo "--- last lines of $f ---" >&2; tail -n 25 "$f" >&2; }
  f="$C/log/setup.log"
  [ -s "$f" ] && { echo "--- last lines of $f ---" >&2; tail -n 10 "$f" >&2; }
  return 0
}

fail() {  # fail MESSAGE [DAEMON]: explain, show the daemon's log, stop what was started
  log "ERROR: $1"
  [ -n "${2:-}" ] && tail_log "$2"
  stop_all >/dev/null 2>&1 || true
  exit 1
}

pick_port() {  # pick_port PREFERRED TAKEN...: PREFERRED if free, else a free port in 20000-29999
  local want=$1 p; shift
  if ! port_in_use "$want" && [[ " $* " != *" $want "* ]]; then echo "$want"; return; fi
  p=$((20000 + RANDOM % 9000))
  for _ in $(seq 1000); do
    if ! port_in_use "$p" && [[ " $* " != *" $p "* ]]; then echo "$p"; return; fi
    p=$((p + 1))
  done
  return 1
}

check_port() {  # check_port PORT WHAT
  [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ] || fail "$2 port '$1' is not a port number"
  if port_in_use "$1"; then
    fail "$2 port $1 is already in use on 127.0.0.1 (a leftover server? run '$0 stop DIR', or pick another port)"
  fi
}

wait_daemon() {  # wait_daemon NAME CHECK...: until CHECK succeeds; fail if the daemon dies
  local n=$1 p=""; shift
  for _ in $(seq $((WAIT * 4))); do
    "$@" && return 0
    p=$(pidof_daemon "$n")
    if [ -n "$p" ] && ! alive "$p"; then fail "$n (pid $p) exited during start-up" "$n"; fi
    sleep 0.25
  done
  fail "$n did not become ready within ${WAIT}s" "$n"
}

case "$cmd" in
  stop)
    [ -d "$C" ] || { log "nothing to stop: no directory $C"; exit 0; }
    stop_all; exit $? ;;
  status)
    rc=0
    for n in "${DAEMONS[@]}"; do
      p=$(pidof_daemon "$n")
      if alive "$p"; then echo "$n running (pid $p)"; else echo "$n not running"; rc=3; fi
    done
    [ -f "$C/s3.env" ] && cat "$C/s3.env"
    exit $rc ;;
  start) ;;
  *) echo "usage: $0 start [DIR] [PORT] [MON_PORT] [MON_V1_PORT] | stop [DIR] | status [DIR]" >&2
     exit 2 ;;
esac

for b in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool; do
  command -v "$b" >/dev/null || fail "$b not found; install: apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd"
done

# A leftover instance in the same directory is stopped before its state is wiped.
[ -d "$C" ] && stop_all >/dev/null 2>&1 || true
rm -rf "$C"; mkdir -p "$C"/{run,log,mon,osd/ceph-0,rgw}
# Unix socket paths (the admin sockets) are limited to 107 bytes.
[ ${#C} -le 70 ] || fail "directory path too long for ceph's admin sockets (${#C} > 70 chars): $C"

PORT=${3:-${RGW_PORT:-7480}}
check_port "$PORT" "S3"
if [ -n "${4:-${RGW_MON_PORT:-}}" ]; then MON2=${4:-$RGW_MON_PORT}; check_port "$MON2" "monitor";
else MON2=$(pick_port 3300 "$PORT") || fail "no free port for the monitor"; fi
if [ -n "${5:-${RGW_MON_V1_PORT:-}}" ]; then MON1=${5:-$RGW_MON_V1_PORT}; check_port "$MON1" "monitor v1";
else MON1=$(pick_port 6789 "$PORT" "$MON2") || fail "no free port for the monitor (v1)"; fi
[ "$PORT" != "$MON2" ] && [ "$PORT" != "$MON1" ] && [ "$MON1" != "$MON2" ] || fail "ports must differ: $PORT $MON2 $MON1"
MONADDR="[v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]"

FSID=$(cat /proc/sys/kernel/random/uuid)
cat > "$C/ceph.conf" <<EOF
[global]
fsid = $FSID
mon_host = $MONADDR
public_network = 127.0.0.0/8
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# with auth 'none' only crc mode is possible; radosgw otherwise insists on 'secure' and hangs (-13)
ms_client_mode = crc
ms_mon_client_mode = crc
ms_bind_ipv6 = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
osd_objectstore = memstore
memstore_device_bytes = 1073741824
run_dir = $C/run
admin_socket = $C/run/\$name.asok
log_file = $C/log/\$name.log
pid_file = $C/run/\$name.pid
mon_data = $C/mon/\$cluster-\$id
osd_data = $C/osd/\$cluster-\$id
keyring = $C/keyring
[client.rgw.a]
rgw_frontends = beast endpoint=$BIND:$PORT
rgw_data = $C/rgw
EOF
CONF=(-c "$C/ceph.conf")

ceph-authtool --create-keyring "$C/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null \
  || fail "ceph-authtool failed"
monmaptool --create --addv a "$MONADDR" --fsid "$FSID" "$C/monmap" >/dev/null || fail "monmaptool failed"
ceph-mon "${CONF[@]}" --mkfs -i a --monmap "$C/monmap" --keyring "$C/keyring" \
  >>"$C/log/setup.log" 2>&1 || fail "ceph-mon --mkfs failed (see $C/log/setup.log)" mon.a
ceph-mon "${CONF[@]}" -i a >>"$C/log/setup.log" 2>&1 || fail "ceph-mon failed to start" mon.a
wait_daemon mon.a port_in_use "$MON2"

OSD=$(timeout 60 ceph "${CONF[@]}" osd create 2>>"$C/log/setup.log") \
  || fail "'ceph osd create' failed or timed out (is the monitor healthy?)" mon.a
ceph-osd "${CONF[@]}" -i "$OSD" --mkfs >>"$C/log/setup.log" 2>&1 \
  || fail "ceph-osd --mkfs failed (see $C/log/setup.log)" "osd.$OSD"
ceph-osd "${CONF[@]}" -i "$OSD" >>"$C/log/setup.log" 2>&1 || fail "ceph-osd failed to start" "osd.$OSD"

radosgw "${CONF[@]}" -n client.rgw.a --no-mon-config >>"$C/log/setup.log" 2>&1 \
  || fail "radosgw failed to start" client.rgw.a
# radosgw opens its port only once it has created its pools, so this also waits for the OSD.
rgw_up() {
  alive "$(pidof_daemon "osd.$OSD")" || fail "osd.$OSD exited during start-up" "osd.$OSD"
  alive "$(pidof_daemon mon.a)" || fail "mon.a exited during start-up" mon.a
  curl -s -o /dev/null --max-time 2 "http://$BIND:$PORT/"
}
wait_daemon client.rgw.a rgw_up

timeout 120 radosgw-admin "${CONF[@]}" --no-mon-config user create --uid=local --display-name=local \
  --access-key="$AK" --secret-key="$SK" >>"$C/log/setup.log" 2>&1 \
  || fail "radosgw-admin user create failed (see $C/log/setup.log)" client.rgw.a

cat > "$C/s3.env" <<EOF
S3_ENDPOINT=http://$BIND:$PORT
S3_ACCESS_KEY=$AK
S3_SECRET_KEY=$SK
RGW_MON_PORT=$MON2
RGW_MON_V1_PORT=$MON1
EOF
cat "$C/s3.env"
log "S3 on http://$BIND:$PORT (stop: bash $0 stop $C)"
