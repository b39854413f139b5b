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
#   2. astore: `node packages/server/bin/astore.js serve` on a fresh data dir and a free port;
#   3. MinIO: built once by scripts/install-minio.sh, fresh data dir on the same filesystem;
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
# `timeout`. About 5 minutes on an idle 2-core machine once MinIO is built (the first build takes 5-10
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

tsnode() { node --import tsx "$@"; }

loadgen_flags=()
[ "${BENCH_QUICK:-0}" = 1 ] && loadgen_flags+=(--quick)
[ "${BENCH_2G:-1}" = 0 ] && loadgen_flags+=(--no-2g)

# Credentials for this run only; the servers live on 127.0.0.1 for a few minutes.
access_key="benchadmin"
secret_key="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"

# --- MinIO binary first, so its build never overlaps a measurement. -------------------------------
minio_bin=""
if [[ "$targets" == *,minio,* ]]; then
  log "MinIO binary (built once, cached under \${ASTORE_TOOLS_DIR:-\$HOME/.cache/astore/tools})"
  minio_bin="$(bash scripts/install-minio.sh)"
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
if ! UV_THREADPOOL_SIZE=64 timeout 900 tsnode bench/s3/disk.ts --dir "$work/disk" --out "$work/disk.json" \
  "${loadgen_flags[@]}"; then
  log "raw disk measurement failed"
  status=1
fi
rm -rf "$work/disk"

# --- 1b. Loopback HTTP -------------------------------------------------------------------------------
log "loopback HTTP: node:http sink on 127.0.0.1"
sink_port="$(free_port)"
tsnode bench/s3/sink.ts --port "$sink_port" > "$work/sink.log" 2>&1 &
sink_pid=$!
started_pids+=("$sink_pid")
if wait_http "http://127.0.0.1:$sink_port/healthz" 30 "$sink_pid"; then
  timeout 900 tsnode bench/s3/loadgen.ts --target loopback --endpoint "http://127.0.0.1:$sink_port" \
    --access-key "$access_key" --secret-key "$secret_key" --server-pid "$sink_pid" \
    --out "$work/loopback.json" "${loadgen_flags[@]}" || status=1
else
  log "the loopback sink did not start:"; tail -20 "$work/sink.log" >&2; status=1
fi
stop_pid "$sink_pid"

# --- 2. astore ---------------------------------------------------------------------------------------
mkdir -p "$out_dir"
if [[ "$targets" == *,astore,* ]]; then
  port="$(free_port)"
  mkdir -p "$work/astore-data"
  log "astore: node packages/server/bin/astore.js serve on 127.0.0.1:$port"
  env ASTORE_DATA_DIR="$work/astore-data" ASTORE_SERVER__HOST=127.0.0.1 ASTORE_SERVER__PORT="$port" \
    ASTORE_AUTH__ROOT_ACCESS_KEY="$access_key" ASTORE_AUTH__ROOT_SECRET_KEY="$secret_key" \
    ASTORE_LOG__LEVEL=warn node packages/server/bin/astore.js serve > "$work/astore.log" 2>&1 &
  astore_pid=$!
  started_pids+=("$astore_pid")
  if wait_http "http://127.0.0.1:$port/healthz" 60 "$astore_pid"; then
    timeout 900 tsnode bench/s3/loadgen.ts --target astore --endpoint "http://127.0.0.1:$port" \
      --access-key "$access_key" --secret-key "$secret_key" --server-pid "$astore_pid" \
      --out "$work/astore.json" "${loadgen_flags[@]}" || status=1
  else
    log "astore did not answer GET /healthz with 200 within 60 s; its log:"; tail -30 "$work/astore.log" >&2
    status=1
  fi
  stop_pid "$astore_pid"
  # Keep astore's log next to the report when something went wrong or it wrote anything at level warn.
  [ -s "$work/astore.log" ] && cp "$work/astore.log" "$out_dir/$stamp-astore.log"
  rm -rf "$work/astore-data"
fi

# --- 3. MinIO ----------------------------------------------------------------------------------------
if [[ "$targets" == *,minio,* ]]; then
  port="$(free_port)"
  console_port="$(free_port)"
  mkdir -p "$work/minio-data"
  log "MinIO: $minio_bin server on 127.0.0.1:$port"
  env MINIO_ROOT_USER="$access_key" MINIO_ROOT_PASSWORD="$secret_key" MINIO_BROWSER=off \
    "$minio_bin" server "$work/minio-data" --address "127.0.0.1:$port" \
    --console-address "127.0.0.1:$console_port" > "$work/minio.log" 2>&1 &
  minio_pid=$!
  started_pids+=("$minio_pid")
  if wait_http "http://127.0.0.1:$port/minio/health/live" 60 "$minio_pid"; then
    timeout 900 tsnode bench/s3/loadgen.ts --target minio --endpoint "http://127.0.0.1:$port" \
      --access-key "$access_key" --secret-key "$secret_key" --server-pid "$minio_pid" \
      --out "$work/minio.json" "${loadgen_flags[@]}" || status=1
  else
    log "MinIO did not become live within 60 s; its log:"; tail -30 "$work/minio.log" >&2
    status=1
  fi
  stop_pid "$minio_pid"
  rm -rf "$work/minio-data"
fi

# --- Report ------------------------------------------------------------------------------------------
echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$work/machine.md"
tsnode bench/s3/report.ts --dir "$work" --out "$report"
log "report written to ${report#"$repo"/}"
exit "$status"
