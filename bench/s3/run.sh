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
#   3. MinIO: built once by scripts/install-minio.sh, fresh data dir on the same filesystem; the load
#      generator talks to it directly;
#   4. astore-s3pg: astore on the S3 blob driver (a bucket of its own MinIO, started for it with its data
#      on the same filesystem) and the PostgreSQL metadata store (a throwaway cluster, defaults: fsync
#      on), both started for the target and removed after it;
#   5. astore-s3pg-2r: fresh backends of the same kind, two astore processes sharing them; the load
#      generator takes turns between the two endpoints, request by request (a GET goes to the replica
#      that did not write the object);
#   astore and MinIO a second time, fresh, for the 2 GiB object alone (peak-RSS acceptance check);
# then prints the markdown tables and writes them to bench/s3/out/<UTC timestamp>.md (git-ignored).
# Every phase also records the CPU time of the server, its backends and the load generator.
#
# Environment:
#   BENCH_TARGETS   servers to measure, default `astore,astore-user,minio,astore-s3pg,astore-s3pg-2r`
#                   (astore-user: astore signing as a policy-bound user instead of root)
#   BENCH_TMPDIR    where the data dirs go (default $TMPDIR or /tmp); pick the disk you want measured
#   BENCH_QUICK=1   small counts and short limits, to try the harness (figures are not meaningful)
#   BENCH_2G=0      skip the single 2 GiB object phase (peak-RSS acceptance check; on by default)
#   BENCH_S3PG_2G=1 run the 2 GiB phase for the s3pg targets too (off by default: it adds minutes,
#                   and their RSS check is not the acceptance check)
#   BENCH_VERIFY    GET body check: off | fast (default) | full
#   ASTORE_TOOLS_DIR  cache of built tools (MinIO), default $HOME/.cache/astore/tools
#   BENCH_REVISION  astore revision written in the report; default from read-only git plumbing
#
# Bounds: every phase stops at a count or a time limit (bench/s3/workloads.ts), every step runs under
# `timeout`. About 10-11 minutes on a 2-core machine once MinIO is built (the first build takes 5-10
# minutes more); the s3pg targets need PostgreSQL's server binaries (scripts/install-postgres.sh).
# Everything listens on 127.0.0.1 only. All servers, backends and the tmp dir are removed at exit,
# Ctrl-C included (bench/common/lib.sh).
set -euo pipefail

# shellcheck source=bench/common/lib.sh
source "$(dirname "$0")/../common/lib.sh"
bench_init s3 astore,astore-user,minio,astore-s3pg,astore-s3pg-2r astore-bench

loadgen_flags=("${quick_flags[@]}")
if [ "${BENCH_2G:-1}" = 0 ]; then loadgen_flags+=(--no-2g); fi

# --- MinIO binary first, so its build never overlaps a measurement. -------------------------------
minio_bin=""
if targeted minio || targeted astore-s3pg || targeted astore-s3pg-2r; then need_minio; fi
if targeted astore-s3pg || targeted astore-s3pg-2r; then need_postgres; fi

build_astore

s3pg_2g=off
if [ "${BENCH_2G:-1}" != 0 ] && [ "${BENCH_S3PG_2G:-0}" = 1 ]; then s3pg_2g=on; fi
machine_description S3 "MinIO ${minio_bin:+$(basename "$(dirname "$minio_bin")")}${pg_bin:+; PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') (defaults: fsync on)}" \
  "; 2 GiB phase $([ "${BENCH_2G:-1}" = 0 ] && echo off || echo on) (s3pg targets: $s3pg_2g); GET check ${BENCH_VERIFY:-fast}"

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

# --- Servers (start_astore and measure: bench/common/lib.sh) -----------------------------------------
# start_<server> PORT DATA_DIR LOG: starts it in the background and sets server_pid.
start_loopback() {
  "${tsnode[@]}" bench/s3/sink.ts --port "$1" > "$3" 2>&1 &
  server_pid=$!
}
start_minio() {
  env MINIO_ROOT_USER="$BENCH_ACCESS_KEY" MINIO_ROOT_PASSWORD="$BENCH_SECRET_KEY" MINIO_BROWSER=off \
    "$minio_bin" server "$2" --address "127.0.0.1:$1" --console-address "127.0.0.1:$(free_port)" > "$3" 2>&1 &
  server_pid=$!
}
# astore-user: astore again, the load generator signing as a user whose policy allows s3:* instead of as
# root (which bypasses the policy engine): every request is decided by the engine, and its allowed
# decisions are audited (audit.allowedReadSampling is 1 by default).
start_astore-user() { start_astore "$@"; }
prepare_astore-user() {
  local api="http://127.0.0.1:$1/api/v1" key
  local -a curl_root=(curl -fsS -u "$BENCH_ACCESS_KEY:$BENCH_SECRET_KEY" -H 'content-type: application/json')
  "${curl_root[@]}" -d '{"name":"bench"}' "$api/users" > /dev/null &&
    "${curl_root[@]}" -X PUT -d '{"statements":[{"effect":"allow","principals":["user:bench"],"actions":["s3:*"],"resources":["s3:*"]}]}' \
      "$api/policies/bench" > /dev/null &&
    key="$("${curl_root[@]}" -d '{}' "$api/users/bench/access-keys")" || return 1
  loadgen_env=(
    "BENCH_ACCESS_KEY=$(node -p 'JSON.parse(process.argv[1]).accessKeyId' "$key")"
    "BENCH_SECRET_KEY=$(node -p 'JSON.parse(process.argv[1]).secretAccessKey' "$key")"
  )
}
# astore-s3pg, astore-s3pg-2r: astore on the S3 driver + PostgreSQL, backends started for the target
# (start_s3pg_backends: bench/common/lib.sh); the second runs two replicas on them.
start_astore-s3pg() { start_astore "$@"; }
start_astore-s3pg-2r() { start_astore "$@"; }
setup_astore-s3pg() { start_s3pg_backends "$1"; }
setup_astore-s3pg-2r() { start_s3pg_backends "$1"; }
teardown_astore-s3pg() { stop_s3pg_backends "$1"; }
teardown_astore-s3pg-2r() { stop_s3pg_backends "$1"; }
replicas[astore-s3pg-2r]=2
declare -A health=([loopback]=/healthz [astore]=/healthz [astore-user]=/healthz [minio]=/minio/health/live
  [astore-s3pg]=/healthz [astore-s3pg-2r]=/healthz)
loadgen_timeout=900

# --- 1b. Loopback HTTP -------------------------------------------------------------------------------
measure loopback loopback "${loadgen_flags[@]}"

# --- 2, 3. astore and MinIO: the workloads, then the 2 GiB object alone on a fresh process -----------
# The fresh run is the acceptance check (peak RSS while one huge object goes up and down); in the main
# run that phase comes after the small-object phases, whose heap growth the process still carries.
for server in astore astore-user minio; do
  targeted "$server" || continue
  measure "$server" "$server" "${loadgen_flags[@]}"
  if [ "${BENCH_2G:-1}" != 0 ] && [ "$server" != astore-user ]; then
    measure "$server" "$server-2g" --only 2GiB "${loadgen_flags[@]}"
  fi
done

# --- 4, 5. astore on MinIO + PostgreSQL, one replica then two -----------------------------------------
s3pg_flags=("${loadgen_flags[@]}")
if [ "$s3pg_2g" = off ] && [ "${BENCH_2G:-1}" != 0 ]; then s3pg_flags+=(--no-2g); fi
for server in astore-s3pg astore-s3pg-2r; do
  targeted "$server" || continue
  measure "$server" "$server" "${s3pg_flags[@]}"
done

finish
