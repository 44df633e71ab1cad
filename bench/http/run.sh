#!/usr/bin/env bash
# bench/http — wrk against the same HTTPS upstream directly, through Keyless (reverse mode,
# bearer injection) and through HAProxy setting the same Authorization header, in one run; plus
# the forwarding-path comparison the issue asks for: a bare http-proxy forwarder against a bare
# undici forwarder doing the same job.
#
#   bash bench/http/run.sh
#
# Everything runs on 127.0.0.1 free ports under a fresh /tmp directory and is torn down on exit.
# Raw wrk output and a summary land in bench/out/ (git-ignored). Installs wrk and haproxy with
# apt-get when missing (needs root).
#
# Knobs (environment): BENCH_SECONDS (10) per wrk run, BENCH_REPS (3) interleaved rounds,
# BENCH_CONNECTIONS (50), BENCH_THREADS (2), BENCH_WARMUP (3) seconds per contender.
set -Eeuo pipefail

SECS=${BENCH_SECONDS:-10}
REPS=${BENCH_REPS:-3}
CONNS=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-2}
WARMUP=${BENCH_WARMUP:-3}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
OUT=bench/out
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS="$OUT/http-results-$STAMP.tsv"
SUMMARY="$OUT/http-summary-$STAMP.md"
NODE="$REPO/node_modules/.bin/node"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

BENCH_NAME=http
# shellcheck source=../lib.sh
source "$REPO/bench/lib.sh"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v haproxy >/dev/null || missing+=(haproxy)
if ((${#missing[@]})); then
  [[ $(id -u) -eq 0 ]] || die "need ${missing[*]}: run as root or install them"
  log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[[ -x $NODE ]] || die "no Node 24 at $NODE (run npm install)"

WORK=$(mktemp -d /tmp/keyless-bench-http.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -n ${BENCH_KEEP:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT

wait_accept() { # port name
  local i
  for ((i = 0; i < 600; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "${PIDS[-1]}" 2>/dev/null || die "$2 exited; see $WORK/$2.log"
    sleep 0.05
  done
  die "$2 did not accept on $1"
}

TOKEN="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
"$NODE" bench/http/pki.ts "$WORK/pki" >/dev/null
CA="$WORK/pki/keyless-test-ca.crt"
read -r UP KL ADMIN HA HP UN < <("$NODE" bench/pg/free-ports.ts 6 | paste -sd' ')

"$NODE" bench/http/upstream.ts "$WORK/pki" "$UP" "$TOKEN" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
wait_accept "$UP" upstream

mkdir -p "$WORK/store/api"
printf '%s' "$TOKEN" >"$WORK/store/api/token"
cat >"$WORK/keyless.yaml" <<YAML
admin: { listen: 127.0.0.1:$ADMIN }
log: { level: warn }
stores: { files: { kind: file, dir: $WORK/store } }
targets:
  api:
    protocol: http
    listen: 127.0.0.1:$KL
    upstream: { url: https://localhost:$UP, tls: { ca: $CA } }
    credential: { store: files, path: api }
    inject: { kind: bearer }
YAML
"$NODE" src/main.ts run --config "$WORK/keyless.yaml" >"$WORK/keyless.log" 2>&1 &
PIDS+=($!)
wait_accept "$KL" keyless

cat >"$WORK/haproxy.cfg" <<CFG
global
  maxconn 4096
defaults
  mode http
  timeout connect 10s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$HA
  default_backend be
backend be
  http-reuse always
  http-request set-header Authorization "Bearer $TOKEN"
  http-request set-header Host localhost:$UP
  server up 127.0.0.1:$UP ssl verify required ca-file $CA sni str(localhost) verifyhost localhost
CFG
haproxy -W -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
wait_accept "$HA" haproxy

"$NODE" bench/http/forwarders.ts http-proxy "$HP" "$UP" "$CA" "$TOKEN" >"$WORK/http-proxy.log" 2>&1 &
PIDS+=($!)
wait_accept "$HP" http-proxy
"$NODE" bench/http/forwarders.ts undici "$UN" "$UP" "$CA" "$TOKEN" >"$WORK/undici.log" 2>&1 &
PIDS+=($!)
wait_accept "$UN" undici

declare -A URL=(
  [direct]="https://localhost:$UP/v1/charges"
  [keyless]="http://127.0.0.1:$KL/v1/charges"
  [haproxy]="http://127.0.0.1:$HA/v1/charges"
  [http-proxy]="http://127.0.0.1:$HP/v1/charges"
  [undici]="http://127.0.0.1:$UN/v1/charges"
)
ORDER=(direct keyless haproxy http-proxy undici)

# The direct run needs the token itself; the proxies add it.
wrk_run() { # name seconds outfile
  local extra=()
  [[ $1 == direct ]] && extra=(-H "Authorization: Bearer $TOKEN")
  wrk -t"$THREADS" -c"$CONNS" -d"$2"s --latency "${extra[@]}" "${URL[$1]}" >"$3" 2>&1
  if grep -q 'Non-2xx' "$3"; then die "$1: non-2xx responses (see $3)"; fi
}

log "warm-up ${WARMUP}s each"
for n in "${ORDER[@]}"; do wrk_run "$n" "$WARMUP" "$OUT/http-warmup-$n.txt"; done

printf 'round\tname\trps\tp99_ms\n' >"$RESULTS"
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000} else print v}'; }
for ((r = 1; r <= REPS; r++)); do
  for n in "${ORDER[@]}"; do
    f="$OUT/http-wrk-$n-$r.txt"
    log "round $r: $n"
    wrk_run "$n" "$SECS" "$f"
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$f")
    p99=$(awk '$1 == "99%" {print $2}' "$f" | to_ms)
    printf '%s\t%s\t%s\t%s\n' "$r" "$n" "$rps" "$p99" >>"$RESULTS"
  done
done

KL_PID=${PIDS[1]}
"$NODE" bench/http/report.ts "$RESULTS" \
  "wrk -t$THREADS -c$CONNS -d${SECS}s --latency, $REPS interleaved rounds; $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); load before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg); Keyless peak RSS $(awk '/VmHWM/ {print $2/1024 " MB"}' "/proc/$KL_PID/status")" \
  | tee "$SUMMARY"
log "summary: $SUMMARY"
