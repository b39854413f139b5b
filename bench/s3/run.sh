#!/usr/bin/env bash
# S3 benchmark: astore against MinIO and against the machine's raw limits, in one run. A benchmark, not
# a test: the test suite never runs it. See bench/RESULTS.md for how to read the table.
#
#   bash bench/s3/run.sh          # or: npm run bench:s3
#
# What it does, one server at a time so they never compete for CPU:
#   1. raw limits: dd (1 GiB, conv=fsync) and bench/s3/disk.ts (the same workloads as files, fsync'd, on
#      the filesystem of the servers' data dirs), then loopback HTTP (bench/s3/sink.ts, a node:http
#      sink/source, driven by the same load generator);
#   2. astore: built (`npm run build`), then `node packages/server/bin/astore.js serve` (the compiled
#      server) on a fresh data dir and a free port;
#   3. MinIO: built once by scripts/install-minio.sh, fresh data dir on the same filesystem;
#   each server a second time, fresh, for the 2 GiB object alone (peak-RSS acceptance check);
# then prints one markdown table and writes it to bench/s3/out/<UTC timestamp>.md (git-ignored).
#
# Environment:
#   BENCH_TARGETS   servers to measure, default `astore,minio`
#   BENCH_TMPDIR    where the data dirs go (default $TMPDIR or /tmp); pick the disk you want measured
#   BENCH_QUICK=1   small counts and short limits, to try the harness (figures are not meaningful)
#   BENCH_2G=0      skip the single 2 GiB object phase (peak-RSS acceptance check; on by default)
#   BENCH_VERIFY    GET body check: off | fast (default) | full
#   ASTORE_TOOLS_DIR  cache of built tools (MinIO), default $HOME/.cache/astore/tools
#
# Bounds: every phase stops at a count or a time limit (bench/s3/workloads.ts), every step runs under
# `timeout`. About 5-6 minutes on a 2-core machine once MinIO is built (the first build takes 5-10
# minutes more). Everything listens on 127.0.0.1 only. All servers and the tmp dir are removed at exit,
# Ctrl-C included.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"

targets=",${BENCH_TARGETS:-astore,minio},"
base="${BENCH_TMPDIR:-${TMPDIR:-/tmp}}"
mkdir -p "$base"
work="$(mktemp -d "$base/astore-bench.XXXXXX")"
out_dir="$repo/bench/s3/out"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
report="$out_dir/$stamp.md"
status=0
started_pids=()
step_pid=""

log() { printf '[bench] %s\n' "$*" >&2; }

# Stops one process we started: SIGTERM, up to 10 s, then SIGKILL.
stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "pid $pid ignored SIGTERM for 10 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # The running step first (the load generator), then the servers.
  [ -n "$step_pid" ] && stop_pid "$step_pid"
  for pid in "${started_pids[@]}"; do stop_pid "$pid"; done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

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

loadgen_flags=()
[ "${BENCH_QUICK:-0}" = 1 ] && loadgen_flags+=(--quick)
[ "${BENCH_2G:-1}" = 0 ] && loadgen_flags+=(--no-2g)

# Credentials for this run only; the servers live on 127.0.0.1 for a few minutes. Passed through the
# environment (loadgen.ts reads BENCH_ACCESS_KEY / BENCH_SECRET_KEY), not argv, so `ps` does not show them.
export BENCH_ACCESS_KEY="benchadmin"
BENCH_SECRET_KEY="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export BENCH_SECRET_KEY

# --- MinIO binary first, so its build never overlaps a measurement. -------------------------------
minio_bin=""
if [[ "$targets" == *,minio,* ]]; then
  log "MinIO binary (built once, cached under \${ASTORE_TOOLS_DIR:-\$HOME/.cache/astore/tools})"
  minio_bin="$(bash scripts/install-minio.sh)"
fi

# --- astore is measured as it is deployed: compiled, run by plain node (bin/astore.js runs dist/). ---
if [[ "$targets" == *,astore,* ]]; then
  log "building astore (npm run build)"
  npm run build --silent >&2
fi

# --- Machine description ----------------------------------------------------------------------------
{
  echo "## S3 benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo
  echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -m | awk '/^Mem:/{printf "%.1f GiB", $2/1024}') RAM, kernel $(uname -r)"
  echo "- disk of the data dirs: $(df -h "$work" | awk 'NR==2{print $1 ", " $2 " total, " $4 " free"}') ($(findmnt -no FSTYPE -T "$work" 2>/dev/null || echo '?'))"
  echo "- node $(node --version); astore $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' + uncommitted changes'); MinIO ${minio_bin:+$(basename "$(dirname "$minio_bin")")}"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  profile=full
  [ "${BENCH_QUICK:-0}" = 1 ] && profile="quick (BENCH_QUICK=1: small counts, figures not meaningful)"
  echo "- profile: $profile; 2 GiB phase $([ "${BENCH_2G:-1}" = 0 ] && echo off || echo on); GET check ${BENCH_VERIFY:-fast}"
} > "$work/machine.md"

# --- 1a. Raw disk ------------------------------------------------------------------------------------
log "raw disk: dd 1 GiB with conv=fsync in $work"
dd_write="$(dd if=/dev/zero of="$work/dd.bin" bs=1M count=1024 conv=fsync 2>&1 | tail -1 | awk -F', ' '{print $NF}')"
dd_read="$(dd if="$work/dd.bin" of=/dev/null bs=1M 2>&1 | tail -1 | awk -F', ' '{print $NF}')"
rm -f "$work/dd.bin"
echo "- dd reference: 1 GiB of zeros written with conv=fsync at ${dd_write}, read back (page cache) at ${dd_read}" >> "$work/machine.md"

log "raw disk: the workloads as fsync'd files"
step env UV_THREADPOOL_SIZE=64 timeout --foreground 900 "${tsnode[@]}" bench/s3/disk.ts --dir "$work/disk" \
  --out "$work/disk.json" "${loadgen_flags[@]}"
rm -rf "$work/disk"

# --- Servers ------------------------------------------------------------------------------------------
# start_<server> PORT DATA_DIR LOG: starts it in the background and sets server_pid.
start_loopback() {
  "${tsnode[@]}" bench/s3/sink.ts --port "$1" > "$3" 2>&1 &
  server_pid=$!
}
start_astore() {
  env ASTORE_DATA_DIR="$2" ASTORE_SERVER__HOST=127.0.0.1 ASTORE_SERVER__PORT="$1" \
    ASTORE_AUTH__ROOT_ACCESS_KEY="$BENCH_ACCESS_KEY" ASTORE_AUTH__ROOT_SECRET_KEY="$BENCH_SECRET_KEY" \
    ASTORE_LOG__LEVEL=warn node packages/server/bin/astore.js serve > "$3" 2>&1 &
  server_pid=$!
}
start_minio() {
  env MINIO_ROOT_USER="$BENCH_ACCESS_KEY" MINIO_ROOT_PASSWORD="$BENCH_SECRET_KEY" MINIO_BROWSER=off \
    "$minio_bin" server "$2" --address "127.0.0.1:$1" --console-address "127.0.0.1:$(free_port)" > "$3" 2>&1 &
  server_pid=$!
}
declare -A health=([loopback]=/healthz [astore]=/healthz [minio]=/minio/health/live)

# measure SERVER RESULT [loadgen flags...]: a fresh SERVER on a fresh data dir and a free port, the load
# generator against it (results in $work/RESULT.json), then the server stopped and its data removed.
measure() {
  local server=$1 result=$2
  shift 2
  local port data="$work/$result-data" server_log="$work/$result.log"
  port="$(free_port)"
  mkdir -p "$data"
  log "$result: $server on 127.0.0.1:$port"
  "start_$server" "$port" "$data" "$server_log"
  started_pids+=("$server_pid")
  if wait_http "http://127.0.0.1:$port${health[$server]}" 60 "$server_pid"; then
    step timeout --foreground 900 "${tsnode[@]}" bench/s3/loadgen.ts --target "$result" \
      --endpoint "http://127.0.0.1:$port" --server-pid "$server_pid" --out "$work/$result.json" "$@"
  else
    log "$server did not answer GET ${health[$server]} with 200 within 60 s; its log:"
    tail -30 "$server_log" >&2
    status=1
  fi
  stop_pid "$server_pid"
  # astore's log (level warn) is kept next to the report when it has anything to say.
  if [ "$server" = astore ] && [ -s "$server_log" ]; then cp "$server_log" "$out_dir/$stamp-$result.log"; fi
  rm -rf "$data"
}

mkdir -p "$out_dir"
# --- 1b. Loopback HTTP -------------------------------------------------------------------------------
measure loopback loopback "${loadgen_flags[@]}"

# --- 2, 3. astore and MinIO: the workloads, then the 2 GiB object alone on a fresh process -----------
# The fresh run is the acceptance check (peak RSS while one huge object goes up and down); in the main
# run that phase comes after the small-object phases, whose heap growth the process still carries.
for server in astore minio; do
  [[ "$targets" == *,"$server",* ]] || continue
  measure "$server" "$server" "${loadgen_flags[@]}"
  if [ "${BENCH_2G:-1}" != 0 ]; then
    measure "$server" "$server-2g" --only 2GiB "${loadgen_flags[@]}"
  fi
done

# --- Report ------------------------------------------------------------------------------------------
echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$work/machine.md"
"${tsnode[@]}" bench/s3/report.ts --dir "$work" --out "$report"
log "report written to ${report#"$repo"/}"
exit "$status"
