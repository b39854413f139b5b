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
# Ctrl-C included.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"

targets=",${BENCH_TARGETS:-astore,distribution},"
base="${BENCH_TMPDIR:-${TMPDIR:-/tmp}}"
mkdir -p "$base"
work="$(mktemp -d "$base/astore-bench-oci.XXXXXX")"
out_dir="$repo/bench/oci/out"
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
# interrupt stops the run. The command runs in the background and the script `wait`s for it, so a
# trapped signal (Ctrl-C, a CI cancel's SIGTERM) stops it and the servers right away (see bench/s3/run.sh).
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

# An array, not a function: `timeout` can only run a program.
tsnode=(node --import tsx)

quick_flags=()
[ "${BENCH_QUICK:-0}" = 1 ] && quick_flags+=(--quick)

# Credentials for this run only; astore lives on 127.0.0.1 for a few minutes. Passed through the
# environment (loadgen.ts reads BENCH_ACCESS_KEY / BENCH_SECRET_KEY), not argv, so `ps` does not show them.
export BENCH_ACCESS_KEY="benchadmin"
BENCH_SECRET_KEY="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export BENCH_SECRET_KEY

# --- Distribution binary first, so its build never overlaps a measurement. -------------------------
registry_bin=""
if [[ "$targets" == *,distribution,* ]]; then
  log "Distribution registry binary (built once, cached under \${ASTORE_TOOLS_DIR:-\$HOME/.cache/astore/tools})"
  # shellcheck source=scripts/install-oci-tools.sh
  if ! source scripts/install-oci-tools.sh registry; then
    log "could not build the Distribution registry; see above"
    exit 1
  fi
  registry_bin="$ASTORE_TEST_REGISTRY"
fi

# --- astore is measured as it is deployed: compiled, run by plain node (bin/astore.js runs dist/). ---
if [[ "$targets" == *,astore,* ]]; then
  log "building astore (npm run build)"
  npm run build --silent >&2
fi

# Plumbing only: porcelain `git diff` may rewrite .git/index, which can collide with a commit in progress.
revision="${BENCH_REVISION:-}"
if [ -z "$revision" ]; then
  revision="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  GIT_OPTIONAL_LOCKS=0 git diff-index --quiet HEAD -- 2>/dev/null || revision+=" + uncommitted changes"
fi

# --- Machine description ----------------------------------------------------------------------------
{
  echo "## OCI benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo
  echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -m | awk '/^Mem:/{printf "%.1f GiB", $2/1024}') RAM, kernel $(uname -r)"
  echo "- disk of the data dirs: $(df -h "$work" | awk 'NR==2{print $1 ", " $2 " total, " $4 " free"}') ($(findmnt -no FSTYPE -T "$work" 2>/dev/null || echo '?'))"
  echo "- node $(node --version); astore $revision; Distribution ${registry_bin:+$(basename "$(dirname "$registry_bin")")}"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  profile=full
  [ "${BENCH_QUICK:-0}" = 1 ] && profile="quick (BENCH_QUICK=1: small counts, figures not meaningful)"
  echo "- profile: $profile"
} > "$work/machine.md"

# --- 1. The layers ----------------------------------------------------------------------------------
log "writing the layers (random bytes) to $work/layers"
if ! timeout --foreground 600 "${tsnode[@]}" bench/oci/layers.ts --dir "$work/layers" --out "$work/images.json" \
  "${quick_flags[@]}"; then
  log "could not write the layers"
  exit 1
fi

# --- Servers ------------------------------------------------------------------------------------------
# start_<server> PORT DATA_DIR LOG: starts it in the background and sets server_pid.
start_loopback() {
  "${tsnode[@]}" bench/oci/sink.ts --port "$1" --images "$work/images.json" > "$3" 2>&1 &
  server_pid=$!
}
start_astore() {
  env ASTORE_DATA_DIR="$2" ASTORE_SERVER__HOST=127.0.0.1 ASTORE_SERVER__PORT="$1" \
    ASTORE_AUTH__ROOT_ACCESS_KEY="$BENCH_ACCESS_KEY" ASTORE_AUTH__ROOT_SECRET_KEY="$BENCH_SECRET_KEY" \
    ASTORE_LOG__LEVEL=warn node packages/server/bin/astore.js serve > "$3" 2>&1 &
  server_pid=$!
}
start_distribution() {
  local config="$2.yml"
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

# measure SERVER: a fresh SERVER on a fresh data dir and a free port, the load generator against it
# (results in $work/SERVER.json), then the server stopped and its data removed.
measure() {
  local server=$1
  local port data="$work/$server-data" server_log="$work/$server.log"
  port="$(free_port)"
  mkdir -p "$data"
  log "$server on 127.0.0.1:$port"
  "start_$server" "$port" "$data" "$server_log"
  started_pids+=("$server_pid")
  if wait_http "http://127.0.0.1:$port${health[$server]}" 60 "$server_pid"; then
    # shellcheck disable=SC2086 # the auth flag is one word or none
    step timeout --foreground 1200 "${tsnode[@]}" bench/oci/loadgen.ts --target "$server" \
      --endpoint "http://127.0.0.1:$port" --images "$work/images.json" --server-pid "$server_pid" \
      --out "$work/$server.json" ${auth_flags[$server]} "${quick_flags[@]}"
  else
    log "$server did not answer GET ${health[$server]} with 200 within 60 s; its log:"
    tail -30 "$server_log" >&2
    status=1
  fi
  stop_pid "$server_pid"
  # astore's log (level warn) is kept next to the report when it has anything to say. Distribution's is
  # not: it logs every 404 to a HEAD before a push (each new blob) at level error.
  if [ "$server" = astore ] && [ -s "$server_log" ]; then cp "$server_log" "$out_dir/$stamp-$server.log"; fi
  rm -rf "$data" "$data.yml"
}

mkdir -p "$out_dir"
measure loopback
for server in astore distribution; do
  [[ "$targets" == *,"$server",* ]] || continue
  measure "$server"
done

# --- Report ------------------------------------------------------------------------------------------
echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$work/machine.md"
"${tsnode[@]}" bench/oci/report.ts --dir "$work" --out "$report"
log "report written to ${report#"$repo"/}"
exit "$status"
