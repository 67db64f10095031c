#!/usr/bin/env bash
# The agent-state workload side by side: ckptd (through the HTTP saver in
# ckptd_saver.mjs) against LangGraph's own PostgresSaver (PostgreSQL 15 from
# Debian, a private cluster on a unix socket) and SqliteSaver, all driven by
# the same Node process code (bench.mjs); ckptd both with the saver's call
# coalescing (/checkpoints/batch) and without. Rounds interleave the backends in
# a rotating order; the table shows medians. Then durable single-row inserts
# under --connections: Cedana creates against PostgreSQL INSERTs. Last, round
# 1's threads read again by each backend, once the later rounds stored theirs.
#
#   bench/agent/langgraph/run.sh [--rounds 3] [--checkpoints 20000] [--reads 5000]
#                                [--workers 16] [--connections 64] [--seconds 5]
#
# ckptd runs on its defaults; its own environment variables reach it, so
# CKPTD_AGENT_TUPLE_CACHE_BYTES=0 runs it without the tuple cache (every
# read from RocksDB).
#
# Needs a built ckptd (build/ckptd, or CKPTD_BIN) and root (it installs
# PostgreSQL and the savers once, idempotently; CKPTD_LANGGRAPH_PREFIX says
# where the npm packages go, /opt/ckptd/langgraph-bench by default).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
CKPTD="${CKPTD_BIN:-$ROOT/build/ckptd}"
PREFIX="${CKPTD_LANGGRAPH_PREFIX:-/opt/ckptd/langgraph-bench}"
PGBIN=/usr/lib/postgresql/15/bin
rounds=3 checkpoints=20000 reads=5000 workers=16 connections=64 seconds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2" ;; --checkpoints) checkpoints="$2" ;; --reads) reads="$2" ;;
    --workers) workers="$2" ;; --connections) connections="$2" ;; --seconds) seconds="$2" ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
[ -x "$CKPTD" ] || { echo "run.sh: no ckptd at $CKPTD (build first, or set CKPTD_BIN)" >&2; exit 1; }

# --- what it needs, installed once
if [ ! -x "$PGBIN/initdb" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 >/dev/null
fi
mkdir -p "$PREFIX"
if ! cmp -s "$HERE/package.json" "$PREFIX/package.json" || [ ! -d "$PREFIX/node_modules/@langchain/langgraph-checkpoint-sqlite" ]; then
  cp "$HERE/package.json" "$PREFIX/package.json"
  # better-sqlite3 builds against the system's node headers when no prebuilt binary fits.
  (cd "$PREFIX" && npm_config_nodedir=/usr npm install --no-audit --no-fund --loglevel=error)
fi
cp "$HERE/bench.mjs" "$HERE/ckptd_saver.mjs" "$PREFIX/"

# --- a private PostgreSQL cluster and a ckptd, both on disk
work="$(mktemp -d /var/tmp/ckptd-langgraph.XXXXXX)"
ckptd_pid=""
cleanup() {
  [ -n "$ckptd_pid" ] && kill "$ckptd_pid" 2>/dev/null && wait "$ckptd_pid" 2>/dev/null
  [ -f "$work/pg/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
chown postgres "$work"
runuser -u postgres -- "$PGBIN/initdb" -D "$work/pg" -U postgres --auth=trust >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-k $work -p 54329 -c listen_addresses='' -c max_connections=200" start >/dev/null
runuser -u postgres -- "$PGBIN/createdb" -h "$work" -p 54329 bench
PG="postgresql://postgres@/bench?host=$work&port=54329"

port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
"$CKPTD" --data-dir "$work/ckptd" --listen "127.0.0.1:$port" >"$work/ckptd.log" 2>&1 &
ckptd_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
URL="http://127.0.0.1:$port"
TOKEN="$work/ckptd/token"

results="$work/results.jsonl"
# ckptd's runs also report the daemon's CPU per call.
server_of() { case "$1" in ckptd*) echo "--server-pid $ckptd_pid" ;; esac; }
# ckptd: the saver coalesces concurrent calls into /checkpoints/batch;
# ckptd-single: the same saver with a request per call.
backends=(ckptd ckptd-single postgres sqlite)
echo "ckptd $("$CKPTD" --version | awk '{print $2}') vs LangGraph savers ($(node -p "require('$PREFIX/node_modules/@langchain/langgraph-checkpoint-postgres/package.json').version") PostgreSQL, $(node -p "require('$PREFIX/node_modules/@langchain/langgraph-checkpoint-sqlite/package.json').version") SQLite); node $(node --version); $(nproc) CPUs"
echo "$checkpoints checkpoints in 200 threads, $workers workers, $reads reads each; $rounds rounds; ckptd's agent_tuple_cache_bytes: ${CKPTD_AGENT_TUPLE_CACHE_BYTES:-default}"
for r in $(seq "$rounds"); do
  for k in 0 1 2 3; do
    b="${backends[$(((r + k) % 4))]}"
    sync
    node "$PREFIX/bench.mjs" --backend "$b" --prefix "r$r" --checkpoints "$checkpoints" --reads "$reads" \
      --workers "$workers" --url "$URL" --token-file "$TOKEN" --pg "$PG" --sqlite "$work/sqlite-r$r.db" \
      $(server_of "$b") | tee -a "$results"
  done
  for b in ckptd postgres; do
    [ $((r % 2)) -eq 0 ] && b=$([ "$b" = ckptd ] && echo postgres || echo ckptd)
    sync
    node "$PREFIX/bench.mjs" --mode insert --backend "$b" --connections "$connections" --seconds "$seconds" \
      --url "$URL" --token-file "$TOKEN" --pg "$PG" | tee -a "$results"
  done
done
# Then round 1's threads read again, once the later rounds have stored
# theirs: older data, which has left ckptd's memtable (and its block cache
# holds a fraction of the store), as most of a long-lived store is.
if [ "$rounds" -ge 2 ]; then
  cold=(ckptd postgres sqlite)
  for r in $(seq "$rounds"); do
    for k in 0 1 2; do
      b="${cold[$(((r + k) % 3))]}"
      node "$PREFIX/bench.mjs" --backend "$b" --prefix r1 --skip-put --cold --checkpoints "$checkpoints" \
        --reads "$reads" --workers "$workers" --url "$URL" --token-file "$TOKEN" --pg "$PG" --sqlite "$work/sqlite-r1.db" \
        $(server_of "$b") | tee -a "$results"
    done
  done
fi
echo
node "$PREFIX/bench.mjs" --summarize "$results"
