// A LangGraph checkpoint saver over ckptd's agent-state API (/checkpoints/*),
// for the side-by-side benchmark: it serializes exactly as LangGraph's
// PostgresSaver does (the saver's serde, channel values as blobs at their
// new versions, the checkpoint without its channel values) and lists in one
// request with ckptd's "include" extension. Reads ask for "blob_encoding":
// "text", so that JSON-serialized values arrive as text, not base64.
//
// One pool of keep-alive connections per saver (undici, Node's own HTTP
// client library: the one behind fetch, and much lighter on the CPU than
// node:http); every method may run concurrently.
// With `coalesce` (the default), put, put-writes and get-tuple calls made
// while up to `maxInFlight` batches are on the wire wait and go together as
// one POST /checkpoints/batch (ckptd's extension): one round trip, and one
// shared disk sync for the batch's writes. Each call still resolves with
// its own answer, writes only once durable; a lone call goes to its own
// route. Lists always go to their own route: a list is much more work than
// a request costs, and concurrent requests spread it over the daemon's
// threads where a batch runs its ops one after another (lists ran about a
// third faster that way).
import { Pool } from "undici";
import { BaseCheckpointSaver, WRITES_IDX_MAP } from "@langchain/langgraph-checkpoint";

const LIST_PAGE = 1000; // the API's largest limit
const MAX_BATCH = 256; // the API's largest batch
const MIN_SPLIT = 4; // fewer calls than this per batch are not split further
const BATCH_OPS = new Map([["/checkpoints/put", "put"], ["/checkpoints/put-writes", "put-writes"],
  ["/checkpoints/get-tuple", "get-tuple"]]);

export class CkptdSaver extends BaseCheckpointSaver {
  // maxInFlight 1: one batch on the wire, the next gathering meanwhile. On
  // 2 CPUs with ckptd's one I/O thread, put steps ran 3 to 13% faster and
  // cost both processes about a tenth less CPU than with 2 (bench.mjs
  // --in-flight, interleaved rounds).
  constructor({ url, token, maxSockets = 64, coalesce = true, maxInFlight = 1 }, serde) {
    super(serde);
    this.auth = `Bearer ${token}`;
    this.pool = new Pool(url, { connections: maxSockets });
    this.coalesce = coalesce;
    this.maxInFlight = maxInFlight;
    this.queue = [];
    this.inFlight = 0;
    this.flushScheduled = false;
  }

  // A call of one of BATCH_OPS's routes: queued for the next batch when
  // coalescing, else sent on its own.
  call(path, body) {
    const op = BATCH_OPS.get(path);
    if (!this.coalesce || !op) return this.request(path, body);
    return new Promise((resolve, reject) => {
      this.queue.push({ path, op, body, resolve, reject });
      this.scheduleFlush();
    });
  }

  // After the current turn's calls have queued (setImmediate runs once the
  // promise continuations are done), when a batch may leave.
  scheduleFlush() {
    if (this.flushScheduled || this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      // Spread over the free slots (with maxInFlight > 1), so that the
      // daemon works on one batch while this process handles another's answer.
      const per = Math.min(MAX_BATCH, Math.max(MIN_SPLIT, Math.ceil(this.queue.length / (this.maxInFlight - this.inFlight))));
      while (this.queue.length && this.inFlight < this.maxInFlight) this.send(this.queue.splice(0, per));
    });
  }

  send(calls) {
    this.inFlight++;
    const sent = calls.length === 1
      ? this.request(calls[0].path, calls[0].body).then(calls[0].resolve, calls[0].reject)
      : this.request("/checkpoints/batch", { ops: calls.map((c) => ({ op: c.op, body: c.body })) }).then((ans) => {
        ans.results.forEach((r, i) => {
          if (r.status >= 200 && r.status < 300) calls[i].resolve(r.body);
          else calls[i].reject(new Error(`ckptd ${calls[i].path}: ${r.status} ${JSON.stringify(r.body)}`));
        });
      }, (e) => calls.forEach((c) => c.reject(e)));
    sent.finally(() => {
      this.inFlight--;
      this.scheduleFlush();
    });
  }

  // POST `body` as JSON; resolves the parsed answer (null for 204), rejects
  // with the status and body otherwise.
  async request(path, body) {
    const headers = { "content-type": "application/json", authorization: this.auth };
    const res = await this.pool.request({ path, method: "POST", headers, body: JSON.stringify(body) });
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`ckptd ${path}: ${res.statusCode} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  // An answer's blob or write ({type, text} or {type, blob: base64}) as its value.
  async load({ type, text, blob }) {
    if (text === undefined) return this.serde.loadsTyped(type, Buffer.from(blob, "base64"));
    return this.serde.loadsTyped(type, type === "json" ? text : Buffer.from(text, "utf8"));
  }

  async dump(value) {
    const [type, bytes] = await this.serde.dumpsTyped(value);
    return [type, Buffer.from(bytes).toString("base64")];
  }

  // An answer item (get-tuple, or list with include) as a CheckpointTuple.
  async toTuple(item) {
    const values = {};
    for (const b of item.blobs ?? []) {
      if (b.type !== "empty" && (b.text !== undefined || b.blob != null)) values[b.channel] = await this.load(b);
    }
    const pendingWrites = await Promise.all(
      (item.pending_writes ?? []).map(async (w) => [w.task_id, w.channel, await this.load(w)]));
    const at = { thread_id: item.thread_id, checkpoint_ns: item.checkpoint_ns };
    return {
      config: { configurable: { ...at, checkpoint_id: item.checkpoint_id } },
      checkpoint: { ...item.checkpoint, channel_values: values },
      metadata: item.metadata,
      parentConfig: item.parent_checkpoint_id ? { configurable: { ...at, checkpoint_id: item.parent_checkpoint_id } } : undefined,
      pendingWrites,
    };
  }

  async getTuple(config) {
    const { thread_id, checkpoint_ns = "", checkpoint_id } = config.configurable ?? {};
    const item = await this.call("/checkpoints/get-tuple", { thread_id, checkpoint_ns, checkpoint_id: checkpoint_id ?? null,
      blob_encoding: "text" });
    return item ? this.toTuple(item) : undefined;
  }

  // Newest first; without a limit, page by page through before_checkpoint_id.
  async *list(config, options) {
    const { filter, before, limit } = options ?? {};
    const body = { thread_id: config?.configurable?.thread_id ?? null, include: ["values", "pending_writes"],
      blob_encoding: "text" };
    const ns = config?.configurable?.checkpoint_ns;
    if (ns !== undefined && ns !== null) body.checkpoint_ns = ns;
    if (config?.configurable?.checkpoint_id) {
      const one = await this.getTuple(config);
      if (one) yield one;
      return;
    }
    if (filter && Object.keys(filter).length > 0) body.filter_metadata = filter;
    let cursor = before?.configurable?.checkpoint_id;
    let left = limit ?? Infinity;
    while (left > 0) {
      const page = Math.min(left, LIST_PAGE);
      const items = await this.call("/checkpoints/list", { ...body, limit: page, before_checkpoint_id: cursor ?? null });
      for (const item of items) yield await this.toTuple(item);
      if (items.length < page) return;
      left -= items.length;
      cursor = items[items.length - 1].checkpoint_id;
    }
  }

  async put(config, checkpoint, metadata, newVersions) {
    const { thread_id, checkpoint_ns = "", checkpoint_id } = config.configurable ?? {};
    const { channel_values: values = {}, ...stored } = checkpoint;
    const blobs = await Promise.all(Object.entries(newVersions).map(async ([channel, version]) => {
      if (!(channel in values)) return { channel, version: String(version), type: "empty", blob: null };
      const [type, blob] = await this.dump(values[channel]);
      return { channel, version: String(version), type, blob };
    }));
    const [, meta] = await this.serde.dumpsTyped(metadata);
    await this.call("/checkpoints/put", {
      thread_id, checkpoint_ns, checkpoint_id: checkpoint.id, parent_checkpoint_id: checkpoint_id ?? null,
      checkpoint: stored, metadata: JSON.parse(Buffer.from(meta).toString("utf8")), blobs,
    });
    return { configurable: { thread_id, checkpoint_ns, checkpoint_id: checkpoint.id } };
  }

  async putWrites(config, writes, taskId, taskPath = "") {
    const { thread_id, checkpoint_ns = "", checkpoint_id } = config.configurable ?? {};
    const encoded = await Promise.all(writes.map(async ([channel, value], idx) => {
      const [type, blob] = await this.dump(value);
      return { task_id: taskId, idx: WRITES_IDX_MAP[channel] ?? idx, channel, type, blob, task_path: taskPath };
    }));
    const upsert = writes.every(([channel]) => channel in WRITES_IDX_MAP);
    await this.call("/checkpoints/put-writes", { thread_id, checkpoint_ns, checkpoint_id, writes: encoded, upsert });
  }

  async deleteThread(threadId) {
    await this.request("/checkpoints/delete-thread", { thread_id: threadId });
  }

  end() {
    return this.pool.close();
  }
}
