// One backend's run of the agent-state workload, through a LangGraph saver:
// --checkpoints puts (each followed by put-writes of 2 writes) spread over
// --threads threads, from --workers async workers, ~1 KiB of channel value
// per step; then --reads lists (limit 10, each item with its values and
// pending writes, as LangGraph returns them), lists with a metadata filter,
// and get-tuples of a thread's latest checkpoint. Every answer is checked.
// Prints one JSON line: ops/s, p50 and p99 (ms) per operation.
//
//   node bench.mjs --backend ckptd|ckptd-single --url http://127.0.0.1:PORT --token-file F [--in-flight 1]
//       ckptd: the saver coalesces concurrent calls (/checkpoints/batch); ckptd-single: a request per call
//   node bench.mjs --backend postgres --pg postgresql://...
//   node bench.mjs --backend sqlite --sqlite /path/to/file.db
//   node bench.mjs --mode insert --backend ckptd|postgres --connections 64 --seconds 5
//       single-row durable inserts: Cedana creates against PostgreSQL INSERTs
//   node bench.mjs --summarize results.jsonl   (medians per backend, ratios)
//   --reads-of list,list_filter,get_tuple: only those read phases; --skip-put: read what an
//       earlier run with the same --prefix and --checkpoints put (for profiling)
//   --skip-put --cold: the same, reported apart as reads of older data (run.sh reads round 1's
//       threads after the last round, when they have left ckptd's memtable)
//   --server-pid PID: also ckptd's CPU per call (each phase reports cpu: main_us, this process's
//       main thread per call; node_us, all its threads; server_us, the server's threads; server_bg_us,
//       those of them that flush and compact RocksDB); every phase also reports machine_us, the time
//       all CPUs were busy per call, whatever ran (so other processes' share shows)
import fs from "node:fs";
import os from "node:os";
import { Pool } from "undici";
import { parseArgs } from "node:util";

const { values: opt } = parseArgs({
  options: {
    backend: { type: "string" }, mode: { type: "string", default: "saver" },
    url: { type: "string" }, "token-file": { type: "string" }, pg: { type: "string" }, sqlite: { type: "string" },
    checkpoints: { type: "string", default: "20000" }, threads: { type: "string", default: "200" },
    workers: { type: "string", default: "16" }, reads: { type: "string", default: "5000" },
    connections: { type: "string", default: "64" }, seconds: { type: "string", default: "5" },
    prefix: { type: "string", default: "run" }, summarize: { type: "string" },
    "in-flight": { type: "string", default: "1" }, "reads-of": { type: "string" },
    "skip-put": { type: "boolean", default: false }, cold: { type: "boolean", default: false },
    "server-pid": { type: "string" },
  },
});
const num = (k) => Number.parseInt(opt[k], 10);

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : NaN;
}

// CPU time (ns) the threads of process `pid` have run, from the scheduler's
// own per-thread counters (exact, where utime/stime count 10 ms ticks): `ns`,
// all of them; `bg`, those whose name starts with `bgPrefix` (background work).
function threadsCpuNs(pid, tids, bgPrefix) {
  let ns = 0, bg = 0;
  for (const tid of tids ?? fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const t = Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      ns += t;
      if (bgPrefix && fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").startsWith(bgPrefix)) bg += t;
    } catch {
      // a thread that ended meanwhile
    }
  }
  return { ns, bg };
}

// CPU counters around a phase: this Node process's main thread (where all
// of a saver's JavaScript runs: one thread, so 1e6 / main_us calls per second
// is as fast as any saver run from it can go), the whole Node process, and,
// with --server-pid, the server's threads (ckptd's; PostgreSQL's backends
// are other processes, and SQLite runs in this one), RocksDB's flushes and
// compactions among them.
function cpuNow() {
  const server = opt["server-pid"] ? threadsCpuNs(opt["server-pid"], undefined, "rocksdb:") : undefined;
  const main = threadsCpuNs(process.pid, [process.pid]).ns;
  return { main, usage: process.cpuUsage(), server, busy: machineBusyUs() };
}

// CPU time (µs) this machine's CPUs have been busy, all processes and the
// kernel together (/proc/stat's user, nice, system, irq, softirq and steal
// clock ticks; guest time is inside user already). Ticks are 10 ms: close
// enough over a phase of a second or more, not over a short one.
const USER_HZ = 100; // the unit of /proc/stat's counts on x86-64
function machineBusyUs() {
  const [user, nice, system, , , irq, softirq, steal] =
    fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  return ((user + nice + system + irq + softirq + steal) * 1e6) / USER_HZ;
}

function cpuPerCall(before, count) {
  const after = cpuNow();
  const used = process.cpuUsage(before.usage);
  const out = { main_us: (after.main - before.main) / 1e3 / count, node_us: (used.user + used.system) / count,
    machine_us: (after.busy - before.busy) / count };
  if (after.server !== undefined) {
    out.server_us = (after.server.ns - before.server.ns) / 1e3 / count;
    out.server_bg_us = (after.server.bg - before.server.bg) / 1e3 / count;
  }
  return out;
}

// Runs `count` ops (op(i) → Promise) from `workers` concurrent loops.
async function timed(count, workers, op) {
  const lat = [];
  let next = 0;
  const cpu = cpuNow();
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: workers }, async () => {
    for (let i = next++; i < count; i = next++) {
      const t = process.hrtime.bigint();
      await op(i);
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  }));
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  lat.sort((a, b) => a - b);
  return { ops: count / secs, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), cpu: cpuPerCall(cpu, count) };
}

// Runs op() from `workers` loops for `seconds`.
async function timedFor(seconds, workers, op) {
  const lat = [];
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: workers }, async () => {
    while (process.hrtime.bigint() < end) {
      const t = process.hrtime.bigint();
      await op();
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  }));
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  lat.sort((a, b) => a - b);
  return { ops: lat.length / secs, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) };
}

async function makeSaver(backend) {
  if (backend === "ckptd" || backend === "ckptd-single") {
    // ckptd: concurrent calls coalesced into batches; ckptd-single: a request per call.
    const { CkptdSaver } = await import("./ckptd_saver.mjs");
    const token = fs.readFileSync(opt["token-file"], "utf8").trim();
    return new CkptdSaver({ url: opt.url, token, maxSockets: num("workers"), coalesce: backend === "ckptd",
      maxInFlight: num("in-flight") });
  }
  if (backend === "postgres") {
    const { PostgresSaver } = await import("@langchain/langgraph-checkpoint-postgres");
    const { default: pg } = await import("pg");
    // A connection per worker, as ckptd gets a socket per worker.
    const saver = new PostgresSaver(new pg.Pool({ connectionString: opt.pg, max: num("workers") }));
    await saver.setup();
    return saver;
  }
  if (backend === "sqlite") {
    const { SqliteSaver } = await import("@langchain/langgraph-checkpoint-sqlite");
    return SqliteSaver.fromConnString(opt.sqlite);
  }
  throw new Error(`unknown backend ${backend}`);
}

// Ids sort by (step, thread), so a thread's ids grow with its steps.
const checkpointId = (i) => `00000000-0000-6000-8000-${i.toString(16).padStart(12, "0")}`;
const threadId = (t) => `${opt.prefix}-thread-${String(t).padStart(4, "0")}`;
const payload = (step) => `step ${step} `.padEnd(1024, String.fromCharCode(97 + (step % 26)));

function fail(what) {
  throw new Error(`${opt.backend}: ${what}`);
}

async function putStep(saver, i, threads) {
  const t = i % threads, step = Math.floor(i / threads);
  const parent = step ? checkpointId(i - threads) : undefined;
  const checkpoint = {
    v: 4, id: checkpointId(i), ts: new Date(1735689600000 + i).toISOString(),
    channel_values: { messages: payload(step), step }, channel_versions: { messages: step + 1, step: step + 1 },
    versions_seen: { agent: { messages: step } },
  };
  const metadata = { source: step % 10 === 0 ? "input" : "loop", step, parents: {} };
  const config = { configurable: { thread_id: threadId(t), checkpoint_ns: "", checkpoint_id: parent } };
  const next = await saver.put(config, checkpoint, metadata, { messages: step + 1, step: step + 1 });
  await saver.putWrites(next, [["messages", `reply ${step}`], ["step", step + 1]], `task-${i}`);
}

function checkTuple(tuple, what) {
  if (!tuple) fail(`${what}: nothing`);
  const { channel_values: v } = tuple.checkpoint;
  if (typeof v.messages !== "string" || v.messages.length !== 1024) fail(`${what}: channel values missing`);
  if (tuple.pendingWrites.length !== 2) fail(`${what}: ${tuple.pendingWrites.length} pending writes, not 2`);
}

async function listAll(saver, threads, filter) {
  const t = Math.floor(Math.random() * threads);
  const out = [];
  const options = filter ? { limit: 10, filter } : { limit: 10 };
  for await (const tuple of saver.list({ configurable: { thread_id: threadId(t), checkpoint_ns: "" } }, options)) out.push(tuple);
  return out;
}

async function runSaver() {
  const saver = await makeSaver(opt.backend);
  const n = num("checkpoints"), threads = num("threads"), workers = num("workers"), reads = num("reads");
  const steps = Math.floor(n / threads);
  const result = { backend: opt.backend, mode: opt.cold ? "cold" : "saver", checkpoints: n, threads, workers, reads };
  if (!opt["skip-put"]) result.put = await timed(n, workers, (i) => putStep(saver, i, threads));
  const reading = (op) => opt["reads-of"] === undefined || opt["reads-of"].split(",").includes(op);
  if (reading("list")) result.list = await timed(reads, workers, async () => {
    const items = await listAll(saver, threads);
    if (items.length !== Math.min(10, steps)) fail(`list: ${items.length} items`);
    items.forEach((x) => checkTuple(x, "list"));
  });
  const inputs = Math.ceil(steps / 10);
  if (reading("list_filter")) result.list_filter = await timed(reads, workers, async () => {
    const items = await listAll(saver, threads, { source: "input" });
    if (items.length !== Math.min(10, inputs) || items.some((x) => x.metadata.source !== "input"))
      fail(`filtered list: ${items.length} items`);
  });
  if (reading("get_tuple")) result.get_tuple = await timed(reads, workers, async () => {
    const t = Math.floor(Math.random() * threads);
    const tuple = await saver.getTuple({ configurable: { thread_id: threadId(t), checkpoint_ns: "" } });
    checkTuple(tuple, "get-tuple");
    if (tuple.metadata.step !== steps - 1) fail(`get-tuple: step ${tuple.metadata.step}, not the latest`);
  });
  if (opt.backend === "sqlite") result.sqlite = { journal_mode: saver.db.pragma("journal_mode", { simple: true }), synchronous: saver.db.pragma("synchronous", { simple: true }) };
  if (saver.end) await saver.end();
  else if (saver.pool) await saver.pool.end();
  return result;
}

// Durable single-row inserts from `connections` clients: a Cedana create
// (POST /v2/checkpoints) against a PostgreSQL INSERT of a row of the same
// kind (uuid, status, jsonb info, time), each acknowledged once durable.
async function runInsert() {
  const connections = num("connections"), seconds = Number(opt.seconds);
  const result = { backend: opt.backend, mode: "insert", connections };
  if (opt.backend === "ckptd") {
    const token = fs.readFileSync(opt["token-file"], "utf8").trim();
    const pool = new Pool(opt.url, { connections });
    const create = async () => {
      const res = await pool.request({ path: "/v2/checkpoints", method: "POST", headers: { authorization: `Bearer ${token}` } });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`create: ${res.statusCode} ${text}`);
    };
    result.insert = await timedFor(seconds, connections, create);
    await pool.close();
  } else if (opt.backend === "postgres") {
    const { default: pg } = await import("pg");
    const pool = new pg.Pool({ connectionString: opt.pg, max: connections });
    await pool.query("CREATE TABLE IF NOT EXISTS bench_checkpoints (id uuid PRIMARY KEY, status text NOT NULL, info jsonb, created_at timestamptz NOT NULL DEFAULT now())");
    const { randomUUID } = await import("node:crypto");
    result.insert = await timedFor(seconds, connections, () =>
      pool.query("INSERT INTO bench_checkpoints (id, status, info) VALUES ($1, 'initializing', NULL)", [randomUUID()]));
    result.synchronous_commit = (await pool.query("SHOW synchronous_commit")).rows[0].synchronous_commit;
    await pool.end();
  } else {
    fail("--mode insert takes ckptd or postgres");
  }
  return result;
}

// CPU per call, medians. A saver's JavaScript all runs on the Node
// process's main thread, so 1e6 / (its µs per call) is the most calls per
// second any daemon behind that saver could serve this one process; and the
// Node process and ckptd share this machine's CPUs, so neither can their CPU
// per call together exceed CPUs × 1e6 per second. Where the lower of the two
// ceilings lies below SqliteSaver's measured rate, ckptd cannot reach 1×
// here whatever its speed, unless the saver's or the daemon's CPU per call
// comes down.
function cpuTable(c, s, ops, median, fmt) {
  const med = (rs, op, k) => median(rs.map((r) => r[op].cpu[k]));
  const cpus = os.cpus().length;
  // The share of the machine's CPUs busy during ckptd's phase (whatever ran):
  // well below 100% while the two processes wait on each other.
  const busy = (rs, op) => median(rs.map((r) => (r[op].cpu.machine_us * r[op].ops) / (cpus * 1e6)));
  console.log(`\n| CPU µs per call (median) | ckptd saver: Node main thread | Node, all threads | ckptd daemon | ` +
    `ceiling: main thread, ops/s | ceiling: both on ${cpus} CPUs, ops/s | CPUs busy | ` +
    `SqliteSaver: Node main thread | SqliteSaver ops/s |`);
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const [op, name] of ops) {
    const [main, node, server] = ["main_us", "node_us", "server_us"].map((k) => med(c, op, k));
    console.log(`| ${name} | ${fmt(main, 1)} | ${fmt(node, 1)} | ${fmt(server, 1)} | ${fmt(1e6 / main)} | ` +
      `${fmt((cpus * 1e6) / (node + server))} | ${fmt(100 * busy(c, op))}% | ${fmt(med(s, op, "main_us"), 1)} | ` +
      `${fmt(median(s.map((r) => r[op].ops)))} |`);
  }
}

// Medians of every round per backend, and ckptd's ratios.
function summarize(file) {
  const runs = fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  const by = (mode, backend) => runs.filter((r) => (r.mode ?? "saver") === mode && r.backend === backend);
  const med = (rs, op, k) => median(rs.map((r) => r[op][k]));
  const fmt = (x, d = 0) => x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
  const ops = [["put", "put + put-writes"], ["list", "list, limit 10, with values and writes"],
    ["list_filter", "list with a metadata filter"], ["get_tuple", "get-tuple (latest)"]];
  const c = by("saver", "ckptd"), c1 = by("saver", "ckptd-single"), p = by("saver", "postgres"), s = by("saver", "sqlite");
  if (c.length && c1.length && p.length && s.length) {
    console.log(`| ops/s (median of ${c.length}; p99 ms) | ckptd | ckptd, a request per call | PostgresSaver | SqliteSaver | ckptd / PG | ckptd / SQLite |`);
    console.log("|---|---|---|---|---|---|---|");
    for (const [op, name] of ops) {
      const [co, c1o, po, so] = [c, c1, p, s].map((rs) => med(rs, op, "ops"));
      const [cp, c1p, pp, sp] = [c, c1, p, s].map((rs) => med(rs, op, "p99"));
      console.log(`| ${name} | ${fmt(co)} (${fmt(cp, 1)}) | ${fmt(c1o)} (${fmt(c1p, 1)}) | ${fmt(po)} (${fmt(pp, 1)}) | ${fmt(so)} (${fmt(sp, 1)}) | ${fmt(co / po, 2)} | ${fmt(co / so, 2)} |`);
    }
    if (s[0].sqlite) console.log(`\nSQLite: journal_mode=${s[0].sqlite.journal_mode}, synchronous=${s[0].sqlite.synchronous}`);
  }
  if (c.length && s.length && c[0].put?.cpu && s[0].put?.cpu) cpuTable(c, s, ops, median, fmt);
  const [cc, pc, sc] = ["ckptd", "postgres", "sqlite"].map((b) => by("cold", b));
  if (cc.length && pc.length && sc.length) {
    console.log(`\n| reads of round 1's threads after the last round (median of ${cc.length}; p99 ms) | ckptd | PostgresSaver | SqliteSaver | ckptd / PG | ckptd / SQLite |`);
    console.log("|---|---|---|---|---|---|");
    for (const [op, name] of ops.slice(1)) {
      const [co, po, so] = [cc, pc, sc].map((rs) => med(rs, op, "ops"));
      const [cp, pp, sp] = [cc, pc, sc].map((rs) => med(rs, op, "p99"));
      console.log(`| ${name} | ${fmt(co)} (${fmt(cp, 1)}) | ${fmt(po)} (${fmt(pp, 1)}) | ${fmt(so)} (${fmt(sp, 1)}) | ${fmt(co / po, 2)} | ${fmt(co / so, 2)} |`);
    }
  }
  const ci = by("insert", "ckptd"), pi = by("insert", "postgres");
  if (ci.length && pi.length) {
    console.log(`\n| durable single-row insert, ${ci[0].connections} connections (median of ${ci.length}) | ops/s | p50 ms | p99 ms |`);
    console.log("|---|---|---|---|");
    for (const [name, rs] of [["ckptd Cedana create", ci], [`PostgreSQL INSERT (synchronous_commit=${pi[0].synchronous_commit})`, pi]])
      console.log(`| ${name} | ${fmt(med(rs, "insert", "ops"))} | ${fmt(med(rs, "insert", "p50"), 2)} | ${fmt(med(rs, "insert", "p99"), 2)} |`);
    console.log(`\nckptd / PostgreSQL: ops x${fmt(med(ci, "insert", "ops") / med(pi, "insert", "ops"), 2)}, p99 x${fmt(med(ci, "insert", "p99") / med(pi, "insert", "p99"), 2)}`);
  }
}

if (opt.summarize) {
  summarize(opt.summarize);
} else {
  const result = opt.mode === "insert" ? await runInsert() : await runSaver();
  console.log(JSON.stringify(result));
}
