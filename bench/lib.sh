# Shell helpers shared by the bench/*/run.sh scripts. Source it after setting BENCH_NAME; the
# Keyless helpers use NODE, WORK, ADMIN_PORT and KL_LOG, and cpu_ms uses TICK.

log() { printf '[bench/%s %s] %s\n' "$BENCH_NAME" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

stop_pid() { # pid [seconds]: TERM, wait, then KILL
  local pid=$1 t=${2:-10} i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < t * 10; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

start_keyless() { # extra node flags...; sets KL_PID, waits for /readyz (polling, not a fixed sleep)
  "$NODE" "$@" src/main.ts run --config "$WORK/keyless.yaml" >>"$KL_LOG" 2>&1 &
  KL_PID=$!
  local deadline=$((SECONDS + 60))
  until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$ADMIN_PORT/readyz" 2>/dev/null; do
    kill -0 "$KL_PID" 2>/dev/null || { tail -20 "$KL_LOG" >&2; die "keyless exited before it was ready"; }
    ((SECONDS < deadline)) || die "keyless not ready within 60 s"
    sleep 0.1
  done
}

stop_keyless() {
  stop_pid "$KL_PID" 20
  wait "$KL_PID" 2>/dev/null || true
  KL_PID=
}

cpu_ms() { # pid -> "user_ms sys_ms" CPU so far ("0 0" if none)
  [[ -n ${1:-} && -r /proc/$1/stat ]] || { echo "0 0"; return; }
  awk -v tick="$TICK" '{ sub(/^.*\) /, ""); print int($12 * 1000 / tick), int($13 * 1000 / tick) }' "/proc/$1/stat"
}
