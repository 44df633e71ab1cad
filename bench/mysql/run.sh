#!/usr/bin/env bash
# bench/mysql — sysbench oltp_read_only and a connect-per-query loop (mysql2), direct to MariaDB
# (with the password), through Keyless (no password) and through HAProxy in TCP mode (the relay
# floor; the client sends the password itself), in one run; then a CPU profile of Keyless.
#
#   bash bench/mysql/run.sh            (or: npm run bench:mysql)
#
# Everything it starts (a MariaDB instance of its own, Keyless, HAProxy) lives under a fresh /tmp
# directory and on free 127.0.0.1 ports, and is torn down on exit whatever happens. Raw output, the
# .cpuprofile and a summary land in bench/out/ (git-ignored), all named mysql-*. Must run as root
# (it installs packages if missing and runs MariaDB as the `mysql` user).
#
# Knobs (environment): BENCH_SECONDS (10) per sysbench run, BENCH_CONNECT_SECONDS (5) per
# connect-loop run, BENCH_REPS (5) rounds, BENCH_THREADS (8) sysbench threads,
# BENCH_CONCURRENCY (8) connect-loop workers, BENCH_TABLES (4) and BENCH_TABLE_SIZE (10000) for
# sysbench prepare, BENCH_WARMUP (3) seconds per target and mode, BENCH_PROFILE_SECONDS (10; 0 skips
# the profile), BENCH_HAPROXY_THREADS (1).
set -Eeuo pipefail

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
CONNECT_SECONDS=${BENCH_CONNECT_SECONDS:-5}
REPS=${BENCH_REPS:-5}
THREADS=${BENCH_THREADS:-8}
CONCURRENCY=${BENCH_CONCURRENCY:-8}
TABLES=${BENCH_TABLES:-4}
TABLE_SIZE=${BENCH_TABLE_SIZE:-10000}
WARMUP=${BENCH_WARMUP:-3}
PROFILE_SECONDS=${BENCH_PROFILE_SECONDS:-10}
HA_THREADS=${BENCH_HAPROXY_THREADS:-1}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
OUT=bench/out
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RESULTS="$OUT/mysql-results-$STAMP.tsv"
SUMMARY="$OUT/mysql-summary-$STAMP.md"
KL_LOG="$OUT/mysql-keyless.log"
BENCH_NAME=mysql
# shellcheck source=../lib.sh
source bench/lib.sh

[[ $(id -u) -eq 0 ]] || die "run as root (installs packages, runs MariaDB as the mysql user)"

# ---------------------------------------------------------------------------------------------
# 1. What we need
# ---------------------------------------------------------------------------------------------
missing=()
command -v sysbench >/dev/null || missing+=(sysbench)
command -v haproxy >/dev/null || missing+=(haproxy)
[[ -x /usr/sbin/mariadbd ]] && command -v mariadb-install-db >/dev/null || missing+=(mariadb-server)
command -v mariadb >/dev/null || missing+=(mariadb-client)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
MARIADBD=/usr/sbin/mariadbd
[[ -x $MARIADBD ]] || die "no $MARIADBD"
id mysql >/dev/null 2>&1 || die "no mysql user (the mariadb-server package creates it)"

# Keyless runs on the Node 24 pinned as a devDependency, never the Node 20 on PATH.
NODE=$(npm exec --no -- node -p process.execPath 2>/dev/null) || die "cannot resolve the pinned node (npm ci first)"
[[ $("$NODE" -p 'process.versions.node.split(".")[0]') -ge 24 ]] || die "$NODE is not Node >= 24"

# ---------------------------------------------------------------------------------------------
# Cleanup: everything started below, whatever happens.
# ---------------------------------------------------------------------------------------------
WORK=
PW=
KL_PID=
HA_PID=
MY_PID=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [[ -n $KL_PID ]] && stop_pid "$KL_PID" 10 && wait "$KL_PID" 2>/dev/null
  [[ -n $HA_PID ]] && stop_pid "$HA_PID" 5 && wait "$HA_PID" 2>/dev/null
  [[ -n $MY_PID ]] && stop_pid "$MY_PID" 30 && wait "$MY_PID" 2>/dev/null
  [[ -n $WORK && -f $WORK/mariadb/error.log ]] && cp "$WORK/mariadb/error.log" "$OUT/mysql-mariadb-error.log"
  [[ -n $WORK && -d $WORK ]] && rm -rf -- "$WORK"
  # Canary, whatever happened: the bench password must appear nowhere in what we kept (checked
  # here, once every process has stopped and written its last line).
  if [[ -n $PW ]] && grep -rqF -- "$PW" "$OUT"; then
    log "FAILED: the bench password appears in $OUT: $(grep -rlF -- "$PW" "$OUT" | tr '\n' ' ')"
    ((rc != 0)) || rc=1
  elif ((rc == 0)); then
    log "raw results $RESULTS, summary $SUMMARY (no secret in $OUT)"
  fi
  ((rc == 0)) || log "exit status $rc; logs (if any) in $OUT/mysql-*"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

WORK=$(mktemp -d /tmp/keyless-bench-mysql.XXXXXX)
chmod 711 "$WORK"
read -r MY_PORT KL_PORT ADMIN_PORT HA_PORT < <("$NODE" bench/pg/free-ports.ts 4 | paste -sd' ')
[[ -n ${HA_PORT:-} ]] || die "could not get free ports"

# The bench user's password: random per run, never printed, never on a command line (stdin, a
# 0600 file or the environment of the one client that needs it). Hex, so it needs no quoting.
PW=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
DB_USER=kl_bench
DB=sbtest

# ---------------------------------------------------------------------------------------------
# 2. MariaDB instance of our own: own datadir, private tmpdir, socket and free port
# ---------------------------------------------------------------------------------------------
MY=$WORK/mariadb
SOCK=$MY/mysqld.sock
mkdir -m 750 "$MY"
# A private tmpdir: mariadbd deletes other servers' `#sql*` files from a shared one at startup.
mkdir -m 750 "$MY/tmp"
chown -R mysql:mysql "$MY"
log "MariaDB $("$MARIADBD" --version | awk '{print $3}') on 127.0.0.1:$MY_PORT (data in $MY)"
(cd "$WORK" && mariadb-install-db --no-defaults --datadir="$MY/data" --tmpdir="$MY/tmp" --user=mysql \
  --auth-root-authentication-method=socket --skip-test-db --skip-name-resolve) >"$OUT/mysql-install-db.log" 2>&1 \
  || { tail -20 "$OUT/mysql-install-db.log" >&2; die mariadb-install-db; }
# Grant tables on (no --skip-grant-tables); no TLS on any path (Keyless upstream tls: disable).
(cd "$WORK" && exec "$MARIADBD" --no-defaults --user=mysql --datadir="$MY/data" --tmpdir="$MY/tmp" \
  --port="$MY_PORT" --bind-address=127.0.0.1 --socket="$SOCK" --pid-file="$MY/mysqld.pid" \
  --log-error="$MY/error.log" --skip-name-resolve --max-connections=1000 --max-connect-errors=1000000 \
  --thread-cache-size=64 --performance-schema=OFF --character-set-server=utf8mb4 \
  --collation-server=utf8mb4_general_ci --innodb-buffer-pool-size=256M --innodb-log-file-size=64M \
  --innodb-flush-log-at-trx-commit=0 --skip-innodb-doublewrite --skip-log-bin) >/dev/null 2>&1 &
MY_PID=$!
admin_sql() { mariadb --no-defaults -S "$SOCK" -u root -N -B "$@"; }
deadline=$((SECONDS + 60))
until admin_sql -e 'SELECT 1' >/dev/null 2>&1; do
  kill -0 "$MY_PID" 2>/dev/null || { tail -20 "$MY/error.log" >&2; die "mariadbd exited during startup"; }
  ((SECONDS < deadline)) || { tail -20 "$MY/error.log" >&2; die "mariadbd not answering within 60 s"; }
  sleep 0.1
done
# Over stdin: the password is on no command line.
admin_sql <<EOF || die "creating the bench user"
CREATE DATABASE $DB;
CREATE USER $DB_USER@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('$PW');
GRANT ALL ON $DB.* TO $DB_USER@'127.0.0.1';
EOF

# sysbench options for the paths whose client sends the password, in 0600 files (not argv).
SB_COMMON=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-db="$DB" --tables="$TABLES" --table-size="$TABLE_SIZE")
sb_cfg() { # port -> path of a config file with user and password for that port
  local f=$WORK/sysbench-$1.cfg
  [[ -f $f ]] || (umask 077 && printf 'mysql-port=%s\nmysql-user=%s\nmysql-password=%s\n' "$1" "$DB_USER" "$PW" >"$f")
  echo "$f"
}
log "sysbench oltp_read_only prepare --tables=$TABLES --table-size=$TABLE_SIZE"
sysbench --config-file="$(sb_cfg "$MY_PORT")" "${SB_COMMON[@]}" oltp_read_only prepare >"$OUT/mysql-sysbench-prepare.log" 2>&1 \
  || { tail -20 "$OUT/mysql-sysbench-prepare.log" >&2; die "sysbench prepare"; }

# ---------------------------------------------------------------------------------------------
# 3. Keyless on a generated config, file store holding the bench credential
# ---------------------------------------------------------------------------------------------
mkdir -m 700 "$WORK/secrets" "$WORK/secrets/bench-mysql"
(umask 077 && printf '%s' "$DB_USER" >"$WORK/secrets/bench-mysql/username" && printf '%s' "$PW" >"$WORK/secrets/bench-mysql/password")
cat >"$WORK/keyless.yaml" <<EOF
admin: { listen: 127.0.0.1:$ADMIN_PORT }
log: { level: warn }
drainTimeout: 2s
stores:
  bench: { kind: file, dir: $WORK/secrets }
targets:
  bench-mysql:
    protocol: mysql
    listen: 127.0.0.1:$KL_PORT
    upstream: { host: 127.0.0.1, port: $MY_PORT, tls: { mode: disable } }
    credential: { store: bench, path: bench-mysql }
    allow: [ { cidr: 127.0.0.0/8 } ]
EOF


: >"$KL_LOG"
start_keyless
log "Keyless on 127.0.0.1:$KL_PORT (admin $ADMIN_PORT), pid $KL_PID"

# ---------------------------------------------------------------------------------------------
# 4. HAProxy in TCP mode in front of the same MariaDB (the relay floor)
# ---------------------------------------------------------------------------------------------
# One thread by default, like Keyless's one event loop; foreground without master-worker (-db, no -W), so
# $! is the process that relays and /proc/$!/stat is its CPU.
cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread $HA_THREADS
  maxconn 4096
defaults
  mode tcp
  timeout connect 10s
  timeout client 1h
  timeout server 1h
frontend fe
  bind 127.0.0.1:$HA_PORT
  default_backend be
backend be
  server mariadb 127.0.0.1:$MY_PORT
EOF
haproxy -db -f "$WORK/haproxy.cfg" >"$OUT/mysql-haproxy.log" 2>&1 &
HA_PID=$!

# ---------------------------------------------------------------------------------------------
# Smoke test all three paths (also waits for HAProxy to accept): Keyless gets no password.
# ---------------------------------------------------------------------------------------------
port_of() { case $1 in direct) echo "$MY_PORT" ;; keyless) echo "$KL_PORT" ;; haproxy) echo "$HA_PORT" ;; esac; }
client_cnf() { # target -> a 0600 [client] file with the password (direct, haproxy)
  local f=$WORK/client-$1.cnf
  [[ -f $f ]] || (umask 077 && printf '[client]\nuser=%s\npassword=%s\n' "$DB_USER" "$PW" >"$f")
  echo "$f"
}
smoke() { # target -> prints COUNT(*) of sbtest1
  local t=$1
  if [[ $t == keyless ]]; then
    mariadb --no-defaults -h 127.0.0.1 -P "$KL_PORT" -u app -N -B -e 'SELECT COUNT(*) FROM sbtest1' "$DB"
  else
    mariadb --defaults-file="$(client_cnf "$t")" -h 127.0.0.1 -P "$(port_of "$t")" -N -B -e 'SELECT COUNT(*) FROM sbtest1' "$DB"
  fi
}
for t in direct keyless haproxy; do
  deadline=$((SECONDS + 30))
  until got=$(smoke "$t" 2>"$OUT/mysql-smoke-$t.err") && [[ $got == "$TABLE_SIZE" ]]; do
    kill -0 "$HA_PID" 2>/dev/null || { cat "$OUT/mysql-haproxy.log" >&2; die "haproxy exited"; }
    ((SECONDS < deadline)) || { cat "$OUT/mysql-smoke-$t.err" >&2; die "$t: smoke query failed"; }
    sleep 0.1
  done
done
log "HAProxy $(haproxy -v | awk 'NR == 1 { print $3 }') on 127.0.0.1:$HA_PORT, pid $HA_PID; all three paths answer"

# ---------------------------------------------------------------------------------------------
# 5. sysbench and the connect loop, alternating targets
# ---------------------------------------------------------------------------------------------
TICK=$(getconf CLK_TCK)
proxy_pid() { case $1 in keyless) echo "$KL_PID" ;; haproxy) echo "$HA_PID" ;; *) echo "" ;; esac; }

SB_RUN=(oltp_read_only --threads="$THREADS" --report-interval=0 --percentile=95)
# run_sysbench target seconds outfile -> prints "tps txns proxy_user_ms proxy_sys_ms qps" (tps 0 on failure)
run_sysbench() {
  local t=$1 secs=$2 outfile=$3
  local creds pid u0 s0 u1 s1 rc=0
  if [[ $t == keyless ]]; then
    # Any user and no password: Keyless ignores both and logs in with the stored credential.
    creds=(--mysql-port="$KL_PORT" --mysql-user=app --mysql-password=)
  else
    creds=(--config-file="$(sb_cfg "$(port_of "$t")")")
  fi
  pid=$(proxy_pid "$t")
  read -r u0 s0 < <(cpu_ms "$pid")
  sysbench "${creds[@]}" "${SB_COMMON[@]}" "${SB_RUN[@]}" --time="$secs" run >"$outfile" 2>&1 || rc=$?
  read -r u1 s1 < <(cpu_ms "$pid")
  local tps txns qps errs
  read -r txns tps < <(awk '$1 == "transactions:" { gsub(/\(/, "", $3); print $2, $3; exit }' "$outfile") || true
  qps=$(awk '$1 == "queries:" { gsub(/\(/, "", $3); print $3; exit }' "$outfile")
  errs=$(awk '$1 == "ignored" && $2 == "errors:" { print $3; exit }' "$outfile")
  if ((rc != 0)) || [[ -z ${tps:-} ]] || [[ ${errs:-0} != 0 ]] || grep -q FATAL "$outfile"; then
    log "  $t steady: sysbench failed (exit $rc), see $outfile"
    tps=0
  fi
  echo "${tps:-0} ${txns:-0} $((u1 - u0)) $((s1 - s0)) ${qps:-0}"
}

# run_connect target seconds outfile -> prints "rate connections proxy_user_ms proxy_sys_ms" (rate 0 on failure)
run_connect() {
  local t=$1 secs=$2 outfile=$3
  local pid u0 s0 u1 s1 rc=0
  local args=(bench/mysql/connect-loop.ts --port "$(port_of "$t")" --database "$DB" --seconds "$secs" --concurrency "$CONCURRENCY")
  pid=$(proxy_pid "$t")
  read -r u0 s0 < <(cpu_ms "$pid")
  if [[ $t == keyless ]]; then
    env -u BENCH_MYSQL_PASSWORD "$NODE" "${args[@]}" --user app >"$outfile" 2>&1 || rc=$?
  else
    BENCH_MYSQL_PASSWORD=$PW "$NODE" "${args[@]}" --user "$DB_USER" >"$outfile" 2>&1 || rc=$?
  fi
  read -r u1 s1 < <(cpu_ms "$pid")
  local rate conns
  rate=$(sed -n 's/.* rate=\([0-9.]*\) .*/\1/p' "$outfile" | head -1)
  conns=$(sed -n 's/^connections=\([0-9]*\) .*/\1/p' "$outfile" | head -1)
  if ((rc != 0)) || [[ -z $rate ]]; then
    log "  $t connect: connect loop failed (exit $rc), see $outfile"
    rate=0
  fi
  echo "${rate:-0} ${conns:-0} $((u1 - u0)) $((s1 - s0))"
}

TARGETS=(direct keyless haproxy)
log "warm-up: ${WARMUP}s per target and mode"
for t in "${TARGETS[@]}"; do
  run_sysbench "$t" "$WARMUP" "$OUT/mysql-warmup-steady-$t.txt" >/dev/null
  run_connect "$t" "$WARMUP" "$OUT/mysql-warmup-connect-$t.txt" >/dev/null
done

printf '# mode\ttarget\trep\trate\tunits\tproxy_user_ms\tproxy_sys_ms\tqps\n' >"$RESULTS"
any_failed=0
log "measuring: $REPS rounds x 3 targets x {sysbench ${SECONDS_PER_RUN}s, connect loop ${CONNECT_SECONDS}s}"
for ((rep = 1; rep <= REPS; rep++)); do
  # Rotate the order every round so no target always runs first or last.
  order=("${TARGETS[@]:$(((rep - 1) % 3))}" "${TARGETS[@]:0:$(((rep - 1) % 3))}")
  for t in "${order[@]}"; do
    read -r tps txns cu cs qps < <(run_sysbench "$t" "$SECONDS_PER_RUN" "$OUT/mysql-sysbench-$t-$rep.txt")
    [[ $tps == 0 ]] && any_failed=1
    printf 'steady\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$rep" "$tps" "$txns" "$cu" "$cs" "$qps" >>"$RESULTS"
    log "  round $rep/$REPS steady  $t: $tps tps, $qps qps$([[ $t == direct ]] || echo " (proxy CPU user $cu ms, sys $cs ms)")"
  done
  for t in "${order[@]}"; do
    read -r rate conns cu cs < <(run_connect "$t" "$CONNECT_SECONDS" "$OUT/mysql-connect-$t-$rep.txt")
    [[ $rate == 0 ]] && any_failed=1
    printf 'connect\t%s\t%s\t%s\t%s\t%s\t%s\t\n' "$t" "$rep" "$rate" "$conns" "$cu" "$cs" >>"$RESULTS"
    log "  round $rep/$REPS connect $t: $rate connections/s$([[ $t == direct ]] || echo " (proxy CPU user $cu ms, sys $cs ms)")"
  done
done

# ---------------------------------------------------------------------------------------------
# 6. Profile Keyless: the connect loop, then sysbench, against a Keyless under --cpu-prof
# ---------------------------------------------------------------------------------------------
PROFILE_NAME=
if ((PROFILE_SECONDS > 0)); then
  stop_keyless
  PROFILE_NAME=keyless-mysql-$STAMP.cpuprofile
  now_ms() { date +%s%3N; }
  log "profiling: Keyless --cpu-prof; warm-up, then the connect loop for ${PROFILE_SECONDS}s, then sysbench for ${PROFILE_SECONDS}s"
  t_launch=$(now_ms)
  start_keyless --cpu-prof --cpu-prof-dir="$OUT" --cpu-prof-name="$PROFILE_NAME"
  run_connect keyless "$WARMUP" "$OUT/mysql-profile-warmup-keyless.txt" >/dev/null
  # Windows in ms since launch (the profiler starts a few tens of ms later; negligible).
  c_from=$(($(now_ms) - t_launch))
  read -r crate _ _ _ < <(run_connect keyless "$PROFILE_SECONDS" "$OUT/mysql-profile-connect-keyless.txt")
  c_to=$(($(now_ms) - t_launch))
  s_from=$c_to
  read -r stps _ _ _ _ < <(run_sysbench keyless "$PROFILE_SECONDS" "$OUT/mysql-profile-steady-keyless.txt")
  s_to=$(($(now_ms) - t_launch))
  log "  under the profiler: connect loop $crate connections/s, sysbench $stps tps"
  stop_keyless # SIGTERM: a graceful exit writes the profile
  [[ -s $OUT/$PROFILE_NAME ]] || die "no profile written at $OUT/$PROFILE_NAME"
fi

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
{
  echo "## bench/mysql run $STAMP"
  echo
  echo "Command: \`bash bench/mysql/run.sh\` (BENCH_SECONDS=$SECONDS_PER_RUN BENCH_CONNECT_SECONDS=$CONNECT_SECONDS BENCH_REPS=$REPS BENCH_THREADS=$THREADS BENCH_CONCURRENCY=$CONCURRENCY BENCH_TABLES=$TABLES BENCH_TABLE_SIZE=$TABLE_SIZE BENCH_WARMUP=$WARMUP BENCH_PROFILE_SECONDS=$PROFILE_SECONDS BENCH_HAPROXY_THREADS=$HA_THREADS)"
  echo "sysbench: \`sysbench oltp_read_only --tables=$TABLES --table-size=$TABLE_SIZE --threads=$THREADS --time=$SECONDS_PER_RUN run\` (prepared statements, no TLS)."
  echo "Connect loop: \`bench/mysql/connect-loop.ts --concurrency $CONCURRENCY --seconds $CONNECT_SECONDS\`: mysql2 connect, \`SELECT 1\`, close, per iteration."
  echo "Machine: $(nproc) CPUs ($(lscpu | awk -F': *' '/^Model name/ { print $2; exit }')), $(uname -sr); load average before/after the run: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg) (shared machine)."
  echo "Versions: MariaDB $(admin_sql -e 'SELECT VERSION()'), $(sysbench --version), HAProxy $(haproxy -v | awk 'NR == 1 { print $3 }') (mode tcp, nbthread $HA_THREADS), Node $("$NODE" -p process.version), mysql2 $("$NODE" -p 'require("./node_modules/mysql2/package.json").version')."
  echo
  "$NODE" bench/mysql/report.ts "$RESULTS"
  if [[ -n $PROFILE_NAME ]]; then
    echo
    echo "### Keyless CPU profile: connect loop ($crate connections/s under the profiler)"
    echo
    echo "From $OUT/$PROFILE_NAME, the ${PROFILE_SECONDS}s connect window (start-up and warm-up left out)."
    echo
    "$NODE" bench/pg/profile-summary.ts "$OUT/$PROFILE_NAME" --top 15 --window "$c_from:$c_to"
    echo
    echo "### Keyless CPU profile: steady state, sysbench oltp_read_only ($stps tps under the profiler)"
    echo
    "$NODE" bench/pg/profile-summary.ts "$OUT/$PROFILE_NAME" --top 12 --window "$s_from:$s_to"
  fi
} >"$SUMMARY"
cat "$SUMMARY"
find "$OUT" -maxdepth 1 -name 'mysql-smoke-*.err' -empty -delete
((any_failed == 0)) || die "some runs failed (counted as missing in the medians)"
