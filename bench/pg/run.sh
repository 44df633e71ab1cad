#!/usr/bin/env bash
# bench/pg — pgbench through Keyless beside a direct connection and beside PgBouncer injecting the
# same credential, in one run; then a CPU profile of Keyless on the handshake path (pgbench -C).
#
#   bash bench/pg/run.sh            (or: npm run bench:pg)
#
# Everything it starts (a PostgreSQL cluster of its own, Keyless, PgBouncer) lives under a fresh
# /tmp directory and on free 127.0.0.1 ports, and is torn down on exit whatever happens. Raw output,
# the .cpuprofile and a summary land in bench/out/ (git-ignored). Must run as root (it installs
# packages if missing and runs PostgreSQL/PgBouncer as the `postgres` user).
#
# Knobs (environment): BENCH_SECONDS (10) per pgbench run, BENCH_REPS (5) rounds, BENCH_CLIENTS (8),
# BENCH_THREADS (2), BENCH_SCALE (10) for pgbench -i, BENCH_WARMUP (3) seconds per target and mode,
# BENCH_PROFILE_SECONDS (15).
set -Eeuo pipefail

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
REPS=${BENCH_REPS:-5}
CLIENTS=${BENCH_CLIENTS:-8}
THREADS=${BENCH_THREADS:-2}
SCALE=${BENCH_SCALE:-10}
WARMUP=${BENCH_WARMUP:-3}
PROFILE_SECONDS=${BENCH_PROFILE_SECONDS:-15}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
OUT=bench/out
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RESULTS="$OUT/pg-results-$STAMP.tsv"
SUMMARY="$OUT/pg-summary-$STAMP.md"
KL_LOG="$OUT/keyless.log"
BENCH_NAME=pg
# shellcheck source=../lib.sh
source bench/lib.sh

[[ $(id -u) -eq 0 ]] || die "run as root (installs packages, runs PostgreSQL and PgBouncer as the postgres user)"

# ---------------------------------------------------------------------------------------------
# 1. What we need
# ---------------------------------------------------------------------------------------------
pg_bin_dir() {
  local v
  v=$(ls /usr/lib/postgresql 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -1 || true)
  [[ -n $v && -x /usr/lib/postgresql/$v/bin/postgres && -x /usr/lib/postgresql/$v/bin/pgbench ]] && echo "/usr/lib/postgresql/$v/bin"
}
missing=()
pg_bin_dir >/dev/null || missing+=(postgresql postgresql-contrib)
command -v pgbouncer >/dev/null || missing+=(pgbouncer)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PGBIN=$(pg_bin_dir) || die "no PostgreSQL server under /usr/lib/postgresql"
PGBENCH=$PGBIN/pgbench
PSQL=$PGBIN/psql
PGBOUNCER=$(command -v pgbouncer)
id postgres >/dev/null 2>&1 || die "no postgres user (the postgresql package creates it)"

# Keyless runs on the Node 24 pinned as a devDependency, never the Node 20 on PATH.
NODE=$(npm exec --no -- node -p process.execPath 2>/dev/null) || die "cannot resolve the pinned node (npm ci first)"
[[ $("$NODE" -p 'process.versions.node.split(".")[0]') -ge 24 ]] || die "$NODE is not Node >= 24"

# ---------------------------------------------------------------------------------------------
# Cleanup: everything started below, whatever happens.
# ---------------------------------------------------------------------------------------------
WORK=
KL_PID=
PG_STARTED=
PGB_PIDFILE=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [[ -n $KL_PID ]] && stop_pid "$KL_PID" 10 && wait "$KL_PID" 2>/dev/null
  if [[ -n $PGB_PIDFILE && -s $PGB_PIDFILE ]]; then stop_pid "$(cat "$PGB_PIDFILE")" 5; fi
  [[ -n $PG_STARTED ]] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pgdata" -m immediate -w stop >/dev/null 2>&1
  [[ -n $WORK && -d $WORK ]] && rm -rf -- "$WORK"
  ((rc == 0)) || log "exit status $rc; logs (if any) in $OUT/"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

WORK=$(mktemp -d /tmp/keyless-bench-pg.XXXXXX)
chmod 711 "$WORK"
read -r PG_PORT KL_PORT ADMIN_PORT PGB_PORT < <("$NODE" bench/pg/free-ports.ts 4 | paste -sd' ')
[[ -n ${PGB_PORT:-} ]] || die "could not get free ports"

# The bench role's password: random per run, never printed. Hex, so it needs no quoting anywhere.
PW=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
ROLE=kl_bench
DB=kl_bench

# Clients: never a password from the environment or a pgpass file; no TLS on any of the three paths
# (the bench cluster has none, and it would be one more round trip only for some of them).
unset PGPASSWORD PGUSER PGDATABASE PGSERVICE PGSERVICEFILE PGHOST PGPORT PGOPTIONS
export PGPASSFILE=$WORK/no-such-pgpass PGSSLMODE=disable PGGSSENCMODE=disable PGCONNECT_TIMEOUT=10

# ---------------------------------------------------------------------------------------------
# 2. PostgreSQL cluster of our own
# ---------------------------------------------------------------------------------------------
log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (data in $WORK/pgdata)"
mkdir "$WORK/pgdata"
chown postgres:postgres "$WORK/pgdata"
chmod 700 "$WORK/pgdata"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pgdata" -U postgres --auth-local=trust --auth-host=reject \
  --no-sync -E UTF8 --locale=C >"$OUT/pg-initdb.log" 2>&1 || { tail -20 "$OUT/pg-initdb.log" >&2; die initdb; }
cat >>"$WORK/pgdata/postgresql.conf" <<EOF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK/pgdata'
max_connections = 300
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
log_min_messages = warning
EOF
cat >"$WORK/pgdata/pg_hba.conf" <<EOF
local all all trust
host  all all 127.0.0.1/32 scram-sha-256
EOF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pgdata" -l "$WORK/pgdata/server.log" -w -t 60 start >/dev/null \
  || { tail -20 "$WORK/pgdata/server.log" >&2; die "pg_ctl start"; }
PG_STARTED=1
runuser -u postgres -- "$PSQL" -h "$WORK/pgdata" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q >/dev/null <<EOF
CREATE ROLE $ROLE LOGIN PASSWORD '$PW';
CREATE DATABASE $DB OWNER $ROLE;
EOF
log "pgbench -i -s $SCALE"
runuser -u postgres -- "$PGBENCH" -i -q -s "$SCALE" -h "$WORK/pgdata" -p "$PG_PORT" -U "$ROLE" "$DB" \
  >"$OUT/pg-init.log" 2>&1 || { tail -20 "$OUT/pg-init.log" >&2; die "pgbench -i"; }

# ---------------------------------------------------------------------------------------------
# 3. Keyless on a generated config, file store holding the bench credential
# ---------------------------------------------------------------------------------------------
mkdir -m 700 "$WORK/secrets" "$WORK/secrets/bench-pg"
(umask 077 && printf '%s' "$ROLE" >"$WORK/secrets/bench-pg/username" && printf '%s' "$PW" >"$WORK/secrets/bench-pg/password")
cat >"$WORK/keyless.yaml" <<EOF
admin: { listen: 127.0.0.1:$ADMIN_PORT }
log: { level: warn }
drainTimeout: 2s
stores:
  bench: { kind: file, dir: $WORK/secrets }
targets:
  bench-pg:
    protocol: postgres
    listen: 127.0.0.1:$KL_PORT
    upstream: { host: 127.0.0.1, port: $PG_PORT, tls: { mode: disable } }
    credential: { store: bench, path: bench-pg }
    allow: [ { cidr: 127.0.0.0/8 } ]
EOF


: >"$OUT/keyless.log"
start_keyless
log "Keyless on 127.0.0.1:$KL_PORT (admin $ADMIN_PORT), pid $KL_PID"

# ---------------------------------------------------------------------------------------------
# 4. PgBouncer injecting the same credential
# ---------------------------------------------------------------------------------------------
mkdir "$WORK/pgbouncer"
chown postgres:postgres "$WORK/pgbouncer"
chmod 700 "$WORK/pgbouncer"
PGB_PIDFILE=$WORK/pgbouncer/pgbouncer.pid
(
  umask 077
  cat >"$WORK/pgbouncer/pgbouncer.ini" <<EOF
[databases]
$DB = host=127.0.0.1 port=$PG_PORT dbname=$DB user=$ROLE password=$PW

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/pgbouncer/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
logfile = $WORK/pgbouncer/pgbouncer.log
pidfile = $PGB_PIDFILE
EOF
  # trust still wants the client's user name listed; no password in it.
  printf '"%s" ""\n' "$ROLE" >"$WORK/pgbouncer/userlist.txt"
)
chown postgres:postgres "$WORK/pgbouncer/pgbouncer.ini" "$WORK/pgbouncer/userlist.txt"
runuser -u postgres -- "$PGBOUNCER" -q -d "$WORK/pgbouncer/pgbouncer.ini" || die "pgbouncer did not start"

# ---------------------------------------------------------------------------------------------
# Smoke test all three paths (also waits for PgBouncer to accept): only direct has a password.
# ---------------------------------------------------------------------------------------------
port_of() { case $1 in direct) echo "$PG_PORT" ;; keyless) echo "$KL_PORT" ;; pgbouncer) echo "$PGB_PORT" ;; esac; }
as_client() { # target cmd...: run a client command against a target, a password only for direct
  local t=$1
  shift
  if [[ $t == direct ]]; then PGPASSWORD=$PW "$@"; else "$@"; fi
}
for t in direct keyless pgbouncer; do
  deadline=$((SECONDS + 30))
  until got=$(as_client "$t" "$PSQL" -h 127.0.0.1 -p "$(port_of "$t")" -U "$ROLE" -d "$DB" -Atc 'select count(*) from pgbench_branches' 2>"$OUT/smoke-$t.err") \
    && [[ $got == "$SCALE" ]]; do
    ((SECONDS < deadline)) || { cat "$OUT/smoke-$t.err" >&2; [[ -f $WORK/pgbouncer/pgbouncer.log ]] && tail -5 "$WORK/pgbouncer/pgbouncer.log" >&2; die "$t: smoke query failed"; }
    sleep 0.1
  done
done
PGB_PID=$(cat "$PGB_PIDFILE")
log "PgBouncer $("$PGBOUNCER" --version | head -1 | awk '{print $2}') on 127.0.0.1:$PGB_PORT, pid $PGB_PID; all three paths answer"

# ---------------------------------------------------------------------------------------------
# 5. pgbench, alternating targets
# ---------------------------------------------------------------------------------------------
TICK=$(getconf CLK_TCK)
proxy_pid() { case $1 in keyless) echo "$KL_PID" ;; pgbouncer) echo "$PGB_PID" ;; *) echo "" ;; esac; }

# run_pgbench target mode seconds outfile -> prints "tps txns proxy_user_ms proxy_sys_ms" (tps 0 on failure)
run_pgbench() {
  local t=$1 mode=$2 secs=$3 outfile=$4
  local flags=(-S -n -c "$CLIENTS" -j "$THREADS" -T "$secs")
  [[ $mode == connect ]] && flags+=(-C)
  local pid u0 s0 u1 s1 rc=0
  pid=$(proxy_pid "$t")
  read -r u0 s0 < <(cpu_ms "$pid")
  as_client "$t" "$PGBENCH" "${flags[@]}" -h 127.0.0.1 -p "$(port_of "$t")" -U "$ROLE" "$DB" >"$outfile" 2>&1 || rc=$?
  read -r u1 s1 < <(cpu_ms "$pid")
  local tps txns
  tps=$(awk '/^tps = / { print $3; exit }' "$outfile")
  txns=$(awk -F': *' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }' "$outfile")
  if ((rc != 0)) || [[ -z $tps ]] || grep -q '^number of failed transactions: [1-9]' "$outfile"; then
    log "  $t $mode: pgbench failed (exit $rc), see $outfile"
    tps=0
  fi
  echo "${tps:-0} ${txns:-0} $((u1 - u0)) $((s1 - s0))"
}

TARGETS=(direct keyless pgbouncer)
log "warm-up: ${WARMUP}s per target and mode"
for mode in steady connect; do
  for t in "${TARGETS[@]}"; do run_pgbench "$t" "$mode" "$WARMUP" "$OUT/pgbench-warmup-$mode-$t.txt" >/dev/null; done
done

printf '# mode\ttarget\trep\ttps\ttransactions\tproxy_user_ms\tproxy_sys_ms\n' >"$RESULTS"
any_failed=0
log "measuring: $REPS rounds x {steady, connect} x 3 targets x ${SECONDS_PER_RUN}s (pgbench -S -n -c $CLIENTS -j $THREADS -T $SECONDS_PER_RUN [-C])"
for ((rep = 1; rep <= REPS; rep++)); do
  # Rotate the order every round so no target always runs first or last.
  order=("${TARGETS[@]:$(((rep - 1) % 3))}" "${TARGETS[@]:0:$(((rep - 1) % 3))}")
  for mode in steady connect; do
    for t in "${order[@]}"; do
      read -r tps txns cu cs < <(run_pgbench "$t" "$mode" "$SECONDS_PER_RUN" "$OUT/pgbench-$mode-$t-$rep.txt")
      [[ $tps == 0 ]] && any_failed=1
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$t" "$rep" "$tps" "$txns" "$cu" "$cs" >>"$RESULTS"
      log "  round $rep/$REPS $mode $t: $tps tps$([[ $t == direct ]] || echo " (proxy CPU user $cu ms, sys $cs ms)")"
    done
  done
done

# ---------------------------------------------------------------------------------------------
# 6. Profile Keyless on the handshake path: pgbench -S -C against a Keyless under --cpu-prof
# ---------------------------------------------------------------------------------------------
stop_keyless
PROFILE_NAME=keyless-pg-$STAMP.cpuprofile
now_ms() { date +%s%3N; }
log "profiling: Keyless --cpu-prof; warm-up, then pgbench -S -C for ${PROFILE_SECONDS}s, then pgbench -S for ${PROFILE_SECONDS}s"
t_launch=$(now_ms)
start_keyless --cpu-prof --cpu-prof-dir="$OUT" --cpu-prof-name="$PROFILE_NAME"
run_pgbench keyless connect "$WARMUP" "$OUT/pgbench-profile-warmup-keyless.txt" >/dev/null
# Windows in ms since launch; the profiler starts during Node's boot, a few tens of ms later, so
# each window is shifted by that much (negligible against seconds).
c_from=$(($(now_ms) - t_launch))
read -r ctps _ _ _ < <(run_pgbench keyless connect "$PROFILE_SECONDS" "$OUT/pgbench-profile-connect-keyless.txt")
c_to=$(($(now_ms) - t_launch))
s_from=$c_to
read -r stps _ _ _ < <(run_pgbench keyless steady "$PROFILE_SECONDS" "$OUT/pgbench-profile-steady-keyless.txt")
s_to=$(($(now_ms) - t_launch))
log "  under the profiler: -C $ctps tps, steady $stps tps"
stop_keyless # SIGTERM: a graceful exit writes the profile
[[ -s $OUT/$PROFILE_NAME ]] || die "no profile written at $OUT/$PROFILE_NAME"

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
{
  echo "## bench/pg run $STAMP"
  echo
  echo "Command: \`bash bench/pg/run.sh\` (BENCH_SECONDS=$SECONDS_PER_RUN BENCH_REPS=$REPS BENCH_CLIENTS=$CLIENTS BENCH_THREADS=$THREADS BENCH_SCALE=$SCALE)"
  echo "pgbench: \`pgbench -S -n -c $CLIENTS -j $THREADS -T $SECONDS_PER_RUN\` and the same with \`-C\`; scale $SCALE; sslmode=disable on every path."
  echo "Machine: $(nproc) CPUs ($(lscpu | awk -F': *' '/^Model name/ { print $2; exit }')), $(uname -sr); load average before/after the run: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg) (shared machine)."
  echo "Versions: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), PgBouncer $("$PGBOUNCER" --version | head -1 | awk '{print $2}') (pool_mode session), Node $("$NODE" -p process.version)."
  echo
  "$NODE" bench/pg/report.ts "$RESULTS"
  echo
  echo "### Keyless CPU profile: handshake path, pgbench -S -C ($ctps tps under the profiler)"
  echo
  echo "From $OUT/$PROFILE_NAME, the ${PROFILE_SECONDS}s -C window (start-up and warm-up left out)."
  echo
  "$NODE" bench/pg/profile-summary.ts "$OUT/$PROFILE_NAME" --top 15 --window "$c_from:$c_to"
  echo
  echo "### Keyless CPU profile: steady state, pgbench -S ($stps tps under the profiler)"
  echo
  "$NODE" bench/pg/profile-summary.ts "$OUT/$PROFILE_NAME" --top 12 --window "$s_from:$s_to"
} >"$SUMMARY"
cat "$SUMMARY"
find "$OUT" -maxdepth 1 -name 'smoke-*.err' -empty -delete
# Canary: the bench password must appear nowhere in what we kept.
if grep -rqF -- "$PW" "$OUT"; then die "the bench password appears in $OUT: $(grep -rlF -- "$PW" "$OUT" | tr '\n' ' ')"; fi
log "raw results $RESULTS, summary $SUMMARY (no secret in $OUT)"
((any_failed == 0)) || die "some pgbench runs failed (counted as missing in the medians)"
