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
#   each measured by bench/oci/loadgen.ts: push then pull of the image at c=1 and c=5 (a layer per
#   worker), push then pull of 200 small manifests at c=1 and c=16, every push into a fresh repository.
# Then prints one markdown table and writes it to bench/oci/out/<UTC timestamp>.md (git-ignored).
#
# Environment:
#   BENCH_TARGETS   servers to measure, default `astore,distribution` (the loopback limit always runs)
#   BENCH_TMPDIR    where the layers and data dirs go (default $TMPDIR or /tmp); about 2 GiB free needed
#   BENCH_QUICK=1   layers a tenth the size, 40 manifests, short limits (figures are not meaningful)
#   ASTORE_TOOLS_DIR  cache of built tools (Distribution), default $HOME/.cache/astore/tools
#   BENCH_REVISION  astore revision written in the report; default from read-only git plumbing
#
# Bounds: every phase stops at a count or a time limit (bench/oci/workloads.ts), every step runs under
# `timeout`. Everything listens on 127.0.0.1 only. All servers and the tmp dir are removed at exit,
# Ctrl-C included (bench/common/lib.sh).
set -euo pipefail

# shellcheck source=bench/common/lib.sh
source "$(dirname "$0")/../common/lib.sh"
bench_init oci astore,distribution astore-bench-oci

# --- Distribution binary first, so its build never overlaps a measurement. -------------------------
registry_bin=""
if targeted distribution; then
  log "Distribution registry binary (built once, cached under \${ASTORE_TOOLS_DIR:-\$HOME/.cache/astore/tools})"
  # shellcheck source=scripts/install-oci-tools.sh
  if ! source scripts/install-oci-tools.sh registry; then
    log "could not build the Distribution registry; see above"
    exit 1
  fi
  registry_bin="$ASTORE_TEST_REGISTRY"
fi

build_astore

machine_description OCI "Distribution ${registry_bin:+$(basename "$(dirname "$registry_bin")")}"

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
start_distribution() {
  local config="$work/distribution.yml"
  # The shipped image's configuration (config-example.yml), with the data dir, address and log level of
  # this run; http.secret signs the upload state, so it is set rather than left to a random per-process one.
  cat > "$config" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $2
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$1
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
EOF
  env OTEL_TRACES_EXPORTER=none "$registry_bin" serve "$config" > "$3" 2>&1 &
  server_pid=$!
}
declare -A health=([loopback]=/v2/ [astore]=/healthz [distribution]=/v2/)
declare -A auth_flags=([loopback]="" [astore]=--basic-auth [distribution]="")
loadgen_timeout=1200

# --- 2-4. The loopback limit, astore, Distribution ---------------------------------------------------
for server in loopback astore distribution; do
  [ "$server" = loopback ] || targeted "$server" || continue
  # shellcheck disable=SC2086 # the auth flag is one word or none
  measure "$server" "$server" --images "$work/images.json" ${auth_flags[$server]} "${quick_flags[@]}"
done

finish
