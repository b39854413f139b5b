# Shell scaffolding of the benchmarks' run.sh (bench/s3, bench/oci): the run's tmp dir and report path,
# stopping everything the run started at exit (Ctrl-C included), bounded steps, astore built and started
# as deployed, one fresh server per measurement, the report's header and the report itself. Sourced, not
# run; the sourcing script, after `set -euo pipefail`:
#
#   source "$(dirname "$0")/../common/lib.sh"
#   bench_init oci astore,distribution astore-bench-oci   # bench/<name>, default BENCH_TARGETS, tmp prefix
#
# then, for measure, defines start_<server> PORT DATA_DIR LOG for every server but astore (each starts it
# in the background and sets server_pid), the health path of each server in the associative array
# `health`, and `loadgen_timeout`, the time limit of one load generator run in seconds. Optionally, per
# server: setup_<server> RESULT / teardown_<server> RESULT around the measurement (backends: see
# start_s3pg_backends), prepare_<server> PORT once it answers, and replicas[<server>]=N to start N
# processes the load generator spreads its requests over.
#
# Environment read here: BENCH_TARGETS, BENCH_TMPDIR, BENCH_QUICK, BENCH_REVISION (see each run.sh).

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { printf '[bench] %s\n' "$*" >&2; }

# bench_init NAME DEFAULT_TARGETS TMP_PREFIX: from the repository root, a fresh tmp dir ($work, removed
# at exit with every server still running), the report path ($out_dir/$stamp.md), $quick_flags for the
# TypeScript drivers, and this run's credentials.
bench_init() {
  cd "$repo"
  bench_dir="bench/$1"
  targets=",${BENCH_TARGETS:-$2},"
  local base="${BENCH_TMPDIR:-${TMPDIR:-/tmp}}"
  mkdir -p "$base"
  work="$(mktemp -d "$base/$3.XXXXXX")"
  out_dir="$repo/$bench_dir/out"
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  report="$out_dir/$stamp.md"
  status=0
  started_pids=()
  # How stop_pid stops a pid other than with SIGTERM then SIGKILL: "FIRST LAST" signals (PostgreSQL).
  declare -gA stop_how=()
  # Servers started more than once for one measurement (replicas sharing a backend); default 1.
  declare -gA replicas=()
  # Extra environment of start_astore (a storage backend), and the load generator's --watch list.
  astore_env=()
  loadgen_watch=""
  target_loads=""
  step_pid=""
  trap cleanup EXIT
  trap 'log "interrupted"; exit 130' INT TERM
  mkdir -p "$out_dir"

  quick_flags=()
  if [ "${BENCH_QUICK:-0}" = 1 ]; then quick_flags+=(--quick); fi

  # Credentials for this run only; the servers live on 127.0.0.1 for a few minutes. Passed through the
  # environment (loadgen.ts reads BENCH_ACCESS_KEY / BENCH_SECRET_KEY), not argv, so `ps` does not show
  # them.
  export BENCH_ACCESS_KEY="benchadmin"
  BENCH_SECRET_KEY="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  export BENCH_SECRET_KEY
}

# targeted SERVER: whether BENCH_TARGETS names it.
targeted() { [[ "$targets" == *,"$1",* ]]; }

# Stops one process we started: SIGTERM (or stop_how's first signal), up to 10 s, then SIGKILL (or its
# last), and forgets it, so that the exit trap never signals a pid that has since been reused.
stop_pid() {
  local pid=$1 first last
  read -r first last <<< "${stop_how[$pid]:-TERM KILL}"
  forget_pid "$pid"
  kill -0 "$pid" 2>/dev/null || return 0
  kill "-$first" "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "pid $pid ignored SIG$first for 10 s; sending SIG$last"
  kill "-$last" "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
}

forget_pid() {
  local kept=() p
  for p in "${started_pids[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  started_pids=("${kept[@]}")
  unset "stop_how[$1]"
}

cleanup() {
  local rc=$?
  # Ignore further signals while cleaning up (a second Ctrl-C must not leave the tmp dir behind).
  trap '' INT TERM
  trap - EXIT
  # The running step first (the load generator), then the servers, the last started first (astore before
  # the PostgreSQL and MinIO it uses).
  [ -n "$step_pid" ] && stop_pid "$step_pid"
  local i pids=("${started_pids[@]}")
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
  rm -rf "$work"
  exit "$rc"
}

free_port() {
  node -e "const s=require('node:net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# wait_http URL SECONDS PID: polls until URL answers 200; fails early if PID died.
wait_http() {
  local url=$1 seconds=$2 pid=$3
  local deadline=$((SECONDS + seconds))
  while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "$pid" 2>/dev/null || return 1
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)" = 200 ]; then return 0; fi
    sleep 0.2
  done
  return 1
}

# step CMD...: runs one measurement. A failure marks the run failed but lets the other steps go on; an
# interrupt stops the run. The command runs in the background and the script `wait`s for it: `wait`
# returns at once when a trapped signal (Ctrl-C, a CI cancel's SIGTERM) arrives, so the trap stops it
# and the servers right away; a foreground command would make bash wait for the whole step first.
step() {
  local rc=0
  "$@" &
  step_pid=$!
  wait "$step_pid" || rc=$?
  step_pid=""
  case "$rc" in
    0) ;;
    130 | 143) log "interrupted"; exit 130 ;;
    *) status=1 ;;
  esac
  return 0
}

# An array, not a function: `timeout` can only run a program. `timeout --foreground` keeps the command
# in the script's process group; its time limit still works (the command has no children to leave).
tsnode=(node --import tsx)

# astore is measured as it is deployed: compiled, run by plain node (bin/astore.js runs dist/).
build_astore() {
  if [[ "$targets" == *,astore* ]]; then
    log "building astore (npm run build)"
    npm run build --silent >&2
  fi
}

# astore's revision for the report: BENCH_REVISION, or HEAD's short hash and whether the tree differs.
# Plumbing only: porcelain `git diff` may rewrite .git/index, which can collide with a commit in progress.
astore_revision() {
  local revision="${BENCH_REVISION:-}"
  if [ -z "$revision" ]; then
    revision="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    GIT_OPTIONAL_LOCKS=0 git diff-index --quiet HEAD -- 2>/dev/null || revision+=" + uncommitted changes"
  fi
  echo "$revision"
}

# machine_description TITLE COMPARED [PROFILE_DETAIL]: the report's header, in $work/machine.md; COMPARED
# names the server astore is compared with and its version, PROFILE_DETAIL ends the profile line.
machine_description() {
  local title=$1 compared=$2 detail=${3:-} profile=full
  if [ "${BENCH_QUICK:-0}" = 1 ]; then profile="quick (BENCH_QUICK=1: small counts, figures not meaningful)"; fi
  {
    echo "## $title benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo
    echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -m | awk '/^Mem:/{printf "%.1f GiB", $2/1024}') RAM, kernel $(uname -r)"
    echo "- disk of the data dirs: $(df -h "$work" | awk 'NR==2{print $1 ", " $2 " total, " $4 " free"}') ($(findmnt -no FSTYPE -T "$work" 2>/dev/null || echo '?'))"
    echo "- node $(node --version); astore $(astore_revision); $compared"
    echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- profile: $profile$detail"
  } > "$work/machine.md"
}

# start_astore PORT DATA_DIR LOG: the compiled server in the background, this run's root credentials, and
# astore_env on top (storage backends: start_s3pg_backends).
start_astore() {
  env ASTORE_DATA_DIR="$2" ASTORE_SERVER__HOST=127.0.0.1 ASTORE_SERVER__PORT="$1" \
    ASTORE_AUTH__ROOT_ACCESS_KEY="$BENCH_ACCESS_KEY" ASTORE_AUTH__ROOT_SECRET_KEY="$BENCH_SECRET_KEY" \
    ASTORE_LOG__LEVEL=warn "${astore_env[@]}" node packages/server/bin/astore.js serve > "$3" 2>&1 &
  server_pid=$!
}

# measure SERVER RESULT [loadgen flags...]: a fresh SERVER (replicas[SERVER] processes of it, each on a
# fresh data dir and a free port, started one after the other) after setup_SERVER RESULT if defined, the
# load generator ($bench_dir/loadgen.ts) against it (results in $work/RESULT.json; with replicas, every
# endpoint and pid, comma-separated), then the server stopped, teardown_SERVER RESULT, and its data
# removed.
measure() {
  local server=$1 result=$2
  shift 2
  local n=${replicas[$server]:-1} r port data server_log pid ok=1
  local -a ports=() pids=() datas=() logs=()
  # The machine may be shared: the load when each target begins goes into the report's header (finish).
  target_loads+="${target_loads:+, }$result $(cut -d' ' -f1 /proc/loadavg)"
  if declare -F "setup_$server" >/dev/null && ! "setup_$server" "$result"; then
    log "$result: its backends did not start; see above"
    status=1
    ok=0
  fi
  for ((r = 1; ok && r <= n; r++)); do
    port="$(free_port)"
    data="$work/$result-data" server_log="$work/$result.log"
    if [ "$n" -gt 1 ]; then data+="-r$r" server_log="$work/$result-r$r.log"; fi
    mkdir -p "$data"
    datas+=("$data") logs+=("$server_log")
    local what="$server"
    [ "$result" = "$server" ] || what="$result: $server"
    [ "$n" -eq 1 ] || what+=" (replica $r of $n)"
    log "$what on 127.0.0.1:$port"
    "start_$server" "$port" "$data" "$server_log"
    started_pids+=("$server_pid")
    ports+=("$port") pids+=("$server_pid")
    # One at a time: the next replica's free port is picked once this one holds its own.
    if ! wait_http "http://127.0.0.1:$port${health[$server]}" 60 "$server_pid"; then
      log "$server did not answer GET ${health[$server]} with 200 within 60 s; its log:"
      tail -30 "$server_log" >&2
      status=1
      ok=0
    fi
  done
  # prepare_<server> PORT (optional) runs once the server answers, and may set loadgen_env (VAR=value
  # words) for the load generator, e.g. other credentials.
  loadgen_env=()
  if [ "$ok" = 1 ] && declare -F "prepare_$server" >/dev/null && ! "prepare_$server" "${ports[0]}"; then
    log "$server: its preparation failed; its log:"
    tail -30 "${logs[0]}" >&2
    status=1
    ok=0
  fi
  if [ "$ok" = 1 ]; then
    local endpoints="" pid_list="" i
    for i in "${!ports[@]}"; do
      endpoints+="${endpoints:+,}http://127.0.0.1:${ports[i]}"
      pid_list+="${pid_list:+,}${pids[i]}"
    done
    step env "${loadgen_env[@]}" timeout --foreground "$loadgen_timeout" "${tsnode[@]}" "$bench_dir/loadgen.ts" --target "$result" \
      --endpoint "$endpoints" --server-pid "$pid_list" ${loadgen_watch:+--watch "$loadgen_watch"} --out "$work/$result.json" "$@"
  fi
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  if declare -F "teardown_$server" >/dev/null; then "teardown_$server" "$result"; fi
  # astore's log (level warn) is kept next to the report when it has anything to say. The others' are
  # not: Distribution, for one, logs every 404 to a HEAD before a push (each new blob) at level error.
  for server_log in "${logs[@]}"; do
    if [[ "$server" = astore* ]] && [ -s "$server_log" ]; then cp "$server_log" "$out_dir/$stamp-$(basename "$server_log")"; fi
  done
  rm -rf "${datas[@]}"
}

# --- Backends: MinIO and PostgreSQL for astore on the S3 driver + PostgreSQL (the s3pg targets) ------
# Both run on the run's tmp dir, so on the same disk as the other servers' data dirs, and are removed
# with it. PostgreSQL keeps its defaults (fsync on, synchronous_commit on: a commit is on disk before it
# is acknowledged, as with SQLite's synchronous=full and MinIO); only where it listens changes.

# need_minio: the MinIO binary in $minio_bin, built once (scripts/install-minio.sh).
need_minio() {
  if [ -z "${minio_bin:-}" ]; then
    log "MinIO binary (built once, cached under \${ASTORE_TOOLS_DIR:-\$HOME/.cache/astore/tools})"
    minio_bin="$(bash scripts/install-minio.sh)"
  fi
}

# need_postgres: PostgreSQL's server bin directory in $pg_bin (scripts/install-postgres.sh).
need_postgres() {
  if [ -z "${pg_bin:-}" ]; then
    pg_bin="$(bash scripts/install-postgres.sh | sed -n 's/^ASTORE_TEST_POSTGRES=//p')"
    [ -x "$pg_bin/postgres" ] || { log "no PostgreSQL server (scripts/install-postgres.sh)"; return 1; }
  fi
}

# start_backend_minio DIR: MinIO with its data in DIR/data on a free port, this run's credentials; sets
# backend_minio_port and backend_minio_pid.
start_backend_minio() {
  local dir=$1
  mkdir -p "$dir/data"
  backend_minio_port="$(free_port)"
  env MINIO_ROOT_USER="$BENCH_ACCESS_KEY" MINIO_ROOT_PASSWORD="$BENCH_SECRET_KEY" MINIO_BROWSER=off \
    "$minio_bin" server "$dir/data" --address "127.0.0.1:$backend_minio_port" \
    --console-address "127.0.0.1:$(free_port)" > "$dir/minio.log" 2>&1 &
  backend_minio_pid=$!
  started_pids+=("$backend_minio_pid")
  if ! wait_http "http://127.0.0.1:$backend_minio_port/minio/health/live" 60 "$backend_minio_pid"; then
    log "backend MinIO did not start; its log:"
    tail -20 "$dir/minio.log" >&2
    return 1
  fi
}

# start_backend_postgres DIR: a throwaway cluster in DIR (initdb, then the server on a free loopback port,
# its socket in DIR), with a database `astore`; sets backend_pg_pid (the postmaster) and backend_pg_url.
# initdb refuses root: as root, DIR is handed to the `postgres` user and the binaries run as it.
start_backend_postgres() {
  local dir=$1 port
  local -a as_pg=()
  need_postgres || return 1
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    as_pg=(runuser -u postgres --)
    chown postgres: "$dir"
    # The postgres user must be able to reach DIR through the run's tmp dir (mktemp made it 0700).
    chmod o+x "$work"
    if ! "${as_pg[@]}" test -w "$dir"; then
      log "the postgres user cannot reach $dir (a parent of BENCH_TMPDIR is closed to it); pick another BENCH_TMPDIR"
      return 1
    fi
  fi
  if ! "${as_pg[@]}" "$pg_bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    --no-sync --no-instructions > "$dir/initdb.log" 2>&1; then
    log "initdb failed:"
    tail -20 "$dir/initdb.log" >&2
    return 1
  fi
  port="$(free_port)"
  printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\n" "$port" "$dir" \
    >> "$dir/data/postgresql.conf"
  if ! "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start > /dev/null; then
    log "PostgreSQL did not start; its log:"
    tail -20 "$dir/postgres.log" >&2
    return 1
  fi
  backend_pg_pid="$(head -1 "$dir/data/postmaster.pid")"
  started_pids+=("$backend_pg_pid")
  # Fast shutdown (SIGINT: ends the sessions, then a checkpoint), else immediate (SIGQUIT: the postmaster
  # takes its backends with it); never SIGKILL, which would orphan them.
  stop_how[$backend_pg_pid]="INT QUIT"
  if ! "${as_pg[@]}" "$pg_bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -c "create database astore template template0 encoding 'UTF8' locale 'C.UTF-8'" > /dev/null; then
    log "could not create the database"
    return 1
  fi
  backend_pg_url="postgresql://postgres@127.0.0.1:$port/astore"
}

# start_s3pg_backends RESULT: MinIO and PostgreSQL for astore, under $work/RESULT-backends; sets
# astore_env (the S3 blob driver on a bucket of that MinIO, the PostgreSQL metadata store, a server key
# shared by every replica) and loadgen_watch (their CPU time is recorded per phase).
start_s3pg_backends() {
  local dir="$work/$1-backends"
  mkdir -p "$dir"
  need_minio
  log "$1: backend MinIO and PostgreSQL in $dir"
  start_backend_minio "$dir/minio" && start_backend_postgres "$dir/pg" || return 1
  astore_env=(
    ASTORE_STORAGE__BLOB__DRIVER=s3
    "ASTORE_STORAGE__BLOB__S3__ENDPOINT=http://127.0.0.1:$backend_minio_port"
    ASTORE_STORAGE__BLOB__S3__BUCKET=astore-blobs
    ASTORE_STORAGE__BLOB__S3__REGION=us-east-1
    ASTORE_STORAGE__BLOB__S3__FORCE_PATH_STYLE=true
    ASTORE_STORAGE__BLOB__S3__CREATE_BUCKET=true
    "ASTORE_STORAGE__BLOB__S3__ACCESS_KEY_ID=$BENCH_ACCESS_KEY"
    "ASTORE_STORAGE__BLOB__S3__SECRET_ACCESS_KEY=$BENCH_SECRET_KEY"
    ASTORE_STORAGE__META__DRIVER=postgres
    "ASTORE_STORAGE__META__POSTGRES__CONNECTION_STRING=$backend_pg_url"
    "ASTORE_AUTH__SERVER_KEY=$(head -c 32 /dev/urandom | base64)"
  )
  loadgen_watch="minio=$backend_minio_pid,postgres=$backend_pg_pid"
}

# stop_s3pg_backends RESULT: PostgreSQL and MinIO stopped (astore first: measure stops it before
# teardown), their dir removed, astore_env and loadgen_watch cleared.
stop_s3pg_backends() {
  [ -z "${backend_pg_pid:-}" ] || stop_pid "$backend_pg_pid"
  [ -z "${backend_minio_pid:-}" ] || stop_pid "$backend_minio_pid"
  backend_pg_pid="" backend_minio_pid=""
  rm -rf "$work/$1-backends"
  astore_env=()
  loadgen_watch=""
}

# finish: the load average at the end, then the report ($bench_dir/report.ts) printed and written to
# $report; exits with the run's status.
finish() {
  if [ -n "${target_loads:-}" ]; then
    echo "- load average (1 min) as each target began: $target_loads" >> "$work/machine.md"
  fi
  echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$work/machine.md"
  "${tsnode[@]}" "$bench_dir/report.ts" --dir "$work" --out "$report"
  log "report written to ${report#"$repo"/}"
  exit "$status"
}
