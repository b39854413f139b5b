#!/usr/bin/env bash
# OCI benchmark: astore's /v2/ against the CNCF Distribution registry and the loopback HTTP limit, in one
# run. A benchmark, not a test: the test suite never runs it. See bench/RESULTS.md for how to read the
# table.
#
#   bash bench/oci/run.sh          # or: npm run bench:oci
#
# What it does, one server at a time so they never compete for CPU:
#   1. writes the large image's layers once: 2 sets (one per large workload) of 5 files of random bytes,
#      60/80/100/120/140 MiB (bench/oci/layers.ts), in the run's tmp dir;
#   2. loopback HTTP: bench/oci/sink.ts, a node:http sink that speaks the same requests without storing
#      or hashing anything, driven by the same load generator;
#   3. astore: built (`npm run build`), then `node packages/server/bin/astore.js serve` (the compiled
#      server) on a fresh data dir and a free port, HTTP Basic with this run's root credentials;
#   4. Distribution: built once by scripts/install-oci-tools.sh, filesystem storage on a fresh dir on the
#      same filesystem, no auth;
#   5. distribution-s3: Distribution on its S3 driver against a MinIO of its own (same disk), blob GETs
#      proxied rather than redirected to MinIO (as astore does without presigned redirects);
#   6. astore-s3pg: astore on the S3 blob driver (a bucket of its own MinIO, started for it, data on the
#      same filesystem) and the PostgreSQL metadata store (a throwaway cluster, defaults: fsync on), both
#      started for the target and removed after it; astore-s3pg-2r: two astore processes on such
#      backends, the load generator taking turns between them (a pull reads what the other pushed);
#   each measured by bench/oci/loadgen.ts: push then pull of the image at c=1 and c=5 (a layer per
#   worker), push then pull of 200 small manifests at c=1 and c=16, every push into a fresh repository.
# Then prints the markdown tables and writes them to bench/oci/out/<UTC timestamp>.md (git-ignored).
# Every phase also records the CPU time of the server, its backends and the load generator.
#
# Environment:
#   BENCH_TARGETS   servers to measure, default
#                   `astore,distribution,distribution-s3,astore-s3pg,astore-s3pg-2r` (the loopback
#                   limit always runs); the s3pg targets need scripts/install-postgres.sh's server
#   BENCH_TMPDIR    where the layers and data dirs go (default $TMPDIR or /tmp); about 2 GiB free needed
#   BENCH_QUICK=1   layers a tenth the size, 40 manifests, short limits (figures are not meaningful)
#   ASTORE_TOOLS_DIR  cache of built tools (Distribution), default $HOME/.cache/astore/tools
#   BENCH_REVISION  astore revision written in the report; default from read-only git plumbing
#
# Bounds: every phase stops at a count or a time limit (bench/oci/workloads.ts), every step runs under
# `timeout`. About 4-5 minutes on a 2-core machine with every target, once the tools are built. Everything listens on 127.0.0.1 only. All servers and the tmp dir are removed at exit,
# Ctrl-C included (bench/common/lib.sh).
set -euo pipefail

# shellcheck source=bench/common/lib.sh
source "$(dirname "$0")/../common/lib.sh"
bench_init oci astore,distribution,distribution-s3,astore-s3pg,astore-s3pg-2r astore-bench-oci

# --- Distribution binary first, so its build never overlaps a measurement. -------------------------
registry_bin=""
minio_bin=""
if targeted distribution || targeted distribution-s3; then
  log "Distribution registry binary (built once, cached under \${ASTORE_TOOLS_DIR:-\$HOME/.cache/astore/tools})"
  # shellcheck source=scripts/install-oci-tools.sh
  if ! source scripts/install-oci-tools.sh registry; then
    log "could not build the Distribution registry; see above"
    exit 1
  fi
  registry_bin="$ASTORE_TEST_REGISTRY"
fi
if targeted astore-s3pg || targeted astore-s3pg-2r || targeted distribution-s3; then need_minio; fi
if targeted astore-s3pg || targeted astore-s3pg-2r; then need_postgres; fi

build_astore

machine_description OCI "Distribution ${registry_bin:+$(basename "$(dirname "$registry_bin")")}${minio_bin:+; MinIO $(basename "$(dirname "$minio_bin")")}${pg_bin:+; PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') (defaults: fsync on)}"

# --- 1. The layers ----------------------------------------------------------------------------------
log "writing the layers (random bytes) to $work/layers"
if ! timeout --foreground 600 "${tsnode[@]}" bench/oci/layers.ts --dir "$work/layers" --out "$work/images.json" \
  "${quick_flags[@]}"; then
  log "could not write the layers"
  exit 1
fi

# --- Servers (start_astore and measure: bench/common/lib.sh) -----------------------------------------
# start_<server> PORT DATA_DIR LOG: starts it in the background and sets server_pid.
start_loopback() {
  "${tsnode[@]}" bench/oci/sink.ts --port "$1" --images "$work/images.json" > "$3" 2>&1 &
  server_pid=$!
}
# start_distribution PORT DATA_DIR LOG [STORAGE_YAML]: STORAGE_YAML (the storage driver's section and
# its siblings, indented by 2) replaces the filesystem driver on DATA_DIR.
start_distribution() {
  local config="$work/distribution.yml"
  local storage=${4:-"  filesystem:
    rootdirectory: $2"}
  # The shipped image's configuration (config-example.yml), with the data dir, address and log level of
  # this run; http.secret signs the upload state, so it is set rather than left to a random per-process one.
  cat > "$config" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
$storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$1
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
EOF
  chmod 600 "$config" # it may hold the backend MinIO's credentials
  env OTEL_TRACES_EXPORTER=none "$registry_bin" serve "$config" > "$3" 2>&1 &
  server_pid=$!
}
# distribution-s3: Distribution's S3 driver on a MinIO of its own (start_backend_minio: bench/common/
# lib.sh), its bucket created first; blob GETs are served through the registry (redirect disabled), not
# redirected to presigned MinIO URLs, as astore serves them without storage.blob.s3.presignedGetSeconds.
setup_distribution-s3() {
  need_minio
  log "$1: backend MinIO in $work/$1-backends"
  start_backend_minio "$work/$1-backends/minio" || return 1
  if ! curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" -u "$BENCH_ACCESS_KEY:$BENCH_SECRET_KEY" -X PUT \
    "http://127.0.0.1:$backend_minio_port/registry-blobs" > /dev/null; then
    log "could not create the bucket"
    return 1
  fi
  loadgen_watch="minio=$backend_minio_pid"
}
teardown_distribution-s3() {
  [ -z "${backend_minio_pid:-}" ] || stop_pid "$backend_minio_pid"
  backend_minio_pid=""
  rm -rf "$work/$1-backends"
  loadgen_watch=""
}
start_distribution-s3() {
  start_distribution "$1" "$2" "$3" "  s3:
    accesskey: $BENCH_ACCESS_KEY
    secretkey: $BENCH_SECRET_KEY
    region: us-east-1
    regionendpoint: http://127.0.0.1:$backend_minio_port
    forcepathstyle: true
    bucket: registry-blobs
  redirect:
    disable: true"
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
declare -A health=([loopback]=/v2/ [astore]=/healthz [distribution]=/v2/ [distribution-s3]=/v2/
  [astore-s3pg]=/healthz [astore-s3pg-2r]=/healthz)
declare -A auth_flags=([loopback]="" [astore]=--basic-auth [distribution]="" [distribution-s3]=""
  [astore-s3pg]=--basic-auth [astore-s3pg-2r]=--basic-auth)
loadgen_timeout=1200

# --- 2-6. The loopback limit, astore, Distribution, then both on MinIO (astore + PostgreSQL) ----------
for server in loopback astore distribution distribution-s3 astore-s3pg astore-s3pg-2r; do
  [ "$server" = loopback ] || targeted "$server" || continue
  # shellcheck disable=SC2086 # the auth flag is one word or none
  measure "$server" "$server" --images "$work/images.json" ${auth_flags[$server]} "${quick_flags[@]}"
done

finish
