/**
 * Worker-thread pool for index builds and searches, so neither ever blocks
 * the caller's event loop.
 *
 * Two lanes:
 *  - search workers (`size`, default max(1, availableParallelism - 1)) hold
 *    loaded indexes under handles; `load` places an index on the worker with
 *    the fewest loaded bytes (then fewest queued requests), and every search
 *    on that handle runs there;
 *  - build workers (`buildWorkers`, default 1) run `build`, so a
 *    minutes-long HNSW build never queues searches behind it (an HNSW build
 *    itself inserts on every core by default: hnsw.ts buildThreads,
 *    NATSVEC_INDEX_THREADS). A build worker
 *    idle for `buildIdleMs` exits (freeing its heap); the next build starts
 *    a fresh one.
 * Workers start lazily on first use, and are unref'd while idle (an
 * un-closed pool does not keep the process alive).
 *
 * Crashes: when a worker dies (an uncaught exception, process.exit, its JS
 * heap running out), every request pending on it rejects with
 * IndexWorkerError naming the worker, exit code and operation; handles loaded
 * there become lost (search rejects with IndexWorkerError, unload succeeds:
 * the caller loads again), and a replacement worker is started. A worker
 * that dies before finishing its start-up is replaced lazily, on the next
 * request, to avoid a crash loop. A fault in native code (a segfault or
 * abort inside hnswlib) cannot be contained by a thread: it takes the whole
 * process down.
 *
 * Stopping workers: never `worker.terminate()` one that is busy. Terminating
 * a thread while hnswlib-node is inside a native call (addPoint reading its
 * argument array, searchKnn calling the filter) makes node-addon-api's error
 * path fail with "FATAL ERROR: Error::ThrowAsJavaScriptException napi_throw"
 * and aborts the process. So the pool asks instead: it raises a flag in a
 * per-worker SharedArrayBuffer, which long loops poll at checkpoints
 * (kernels.ts), and posts an "exit" message for an idle worker; the worker
 * then exits from its own JavaScript. `close()` falls back to terminate()
 * only if a worker has not exited after `closeTimeoutMs`.
 *
 * Data movement: build copies `vectors` (one memcpy of just its bytes, then
 * transferred) unless it is backed by a SharedArrayBuffer (shared, no copy)
 * or `{ transfer: true }` is passed and it spans its whole buffer (that
 * buffer is transferred and becomes detached for the caller); likewise for
 * load's `bytes`, loadFlat's `vectors` and search's bitset. Serialized
 * indexes, search results and `vectors()` come back transferred, not copied.
 *
 * Stored vectors: `loadFlat` keeps raw vectors in a search worker as a FLAT
 * index (no build/serialize round trip), and `vectors(handle, rows)` reads
 * rows back from any index whose handle says `exactVectors` (the inserted
 * float32 values: FLAT; HNSW and IVF_FLAT under L2/IP), so a caller need not
 * keep its own copy of the vectors.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { Metric } from "../search.ts";
import type { IndexHeader } from "./format.ts";
import type { SearchResult } from "./kernels.ts";
import { IndexParamError, type BuildParams, type IndexType, type SearchParams } from "./types.ts";

/** A loaded index living in one worker. */
export interface IndexHandle {
  readonly id: number;
  readonly type: IndexType;
  readonly metric: Metric;
  readonly dim: number;
  readonly count: number;
  readonly memoryBytes: number;
  /** `vectors()` returns the exact inserted values (FLAT; HNSW and IVF_FLAT under L2/IP). */
  readonly exactVectors: boolean;
}

/** A worker died (or the pool closed) before the request completed, or the handle's worker died. */
export class IndexWorkerError extends Error {
  override readonly name = "IndexWorkerError";
}

export interface PoolOptions {
  /** Build worker threads (builds beyond this queue). Default 1. */
  buildWorkers?: number;
  /** An idle build worker exits after this long. Default 30 000 ms. */
  buildIdleMs?: number;
  /** close(): how long to wait for a busy worker to reach a checkpoint before terminating it anyway. Default 30 000 ms. */
  closeTimeoutMs?: number;
}

/** Exit code of a worker told to crash (the `_killWorker` test hook). */
export const CRASH_EXIT_CODE = 70;

/**
 * Nice value a build worker thread adds to itself at start (the threads it starts inherit it): an
 * HNSW build runs behind inserts and searches whenever the cores are contended, and still gets
 * every idle cycle. On 2 cores at 1M rows the builds of the first sealed segments otherwise take a
 * core from the rest of the ingest.
 */
export const BUILD_THREAD_NICE = 10;

// ---------------------------------------------------------------- protocol (shared with worker.ts)

export type WorkerRequest =
  | { id: number; op: "build"; type: IndexType; metric: Metric; dim: number; params: BuildParams; vectors: Float32Array }
  | { id: number; op: "load"; handle: number; bytes: Uint8Array }
  | { id: number; op: "loadFile"; handle: number; path: string; hnswHeader?: IndexHeader }
  | { id: number; op: "adoptFlat"; handle: number; metric: Metric; dim: number; vectors: Float32Array }
  | { id: number; op: "search"; handle: number; queries: Float32Array; k: number; params: SearchParams; allow?: Uint8Array }
  | { id: number; op: "searchBatch"; items: SearchItem[] }
  | { id: number; op: "vectors"; handle: number; rows: Int32Array }
  | { id: number; op: "unload"; handle: number }
  | { id: 0; op: "exit" | "crash" };

export type WorkerResponse =
  | { ready: true }
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { name: string; message: string } };

interface LoadInfo {
  type: IndexType;
  metric: Metric;
  dim: number;
  count: number;
  memoryBytes: number;
  exactVectors: boolean;
}

export interface PackedResults {
  counts: Int32Array;
  rows: Int32Array;
  distances: Float32Array;
}

/** One search of a `searchBatch` request (same fields as a `search` request). */
export interface SearchItem {
  handle: number;
  queries: Float32Array;
  k: number;
  params: SearchParams;
  allow?: Uint8Array;
}

/** A `searchBatch` answer: one outcome per item, in order. */
export type SearchBatchOutcome = { ok: true; value: PackedResults } | { ok: false; error: { name: string; message: string } };

/** A search waiting for its slot's in-flight batch to come back. */
interface QueuedSearch {
  item: SearchItem;
  transfer: ArrayBuffer[];
  handleId: number;
  resolve: (r: PackedResults) => void;
  reject: (e: Error) => void;
}

// ---------------------------------------------------------------- pool

interface Pending {
  op: WorkerRequest["op"];
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface Slot {
  readonly label: string;
  readonly lane: "search" | "build";
  worker: Worker | undefined;
  /** Shared with the current worker: [0] = 0 run, 1 exit, 2 exit as crashed. */
  control: Int32Array;
  ready: boolean;
  pending: Map<number, Pending>;
  /** Handles loaded in the current worker, and their total memoryBytes. */
  handles: Set<number>;
  bytes: number;
  /** Bytes of loads in flight to this worker (for placement). */
  incoming: number;
  lastError: string | undefined;
  idleTimer: NodeJS.Timeout | undefined;
  /** Searches queued while a batch is in flight on this slot; sent together as the next batch. */
  searchQueue: QueuedSearch[];
  searchBatchesInFlight: number;
}

/** Search batches in flight per worker: one being searched, one queued behind it, so the worker never waits on this thread. */
const SEARCH_BATCHES_IN_FLIGHT = 2;
/** At most this many searches in one batch message. */
const SEARCH_BATCH_MAX = 64;

interface HandleState {
  handle: IndexHandle;
  slot: Slot;
  lost: boolean;
}

const WORKER_URL = new URL("./worker.mjs", import.meta.url);

export class IndexWorkerPool {
  private readonly searchSlots: Slot[];
  private readonly buildSlots: Slot[];
  private readonly handles = new Map<number, HandleState>();
  private readonly buildIdleMs: number;
  private readonly closeTimeoutMs: number;
  private nextRequest = 1;
  private nextHandle = 1;
  private closed = false;
  /** Workers started so far (including replacements), for diagnostics and tests. */
  spawned = 0;

  constructor(size?: number, opts: PoolOptions = {}) {
    const n = size ?? Math.max(1, availableParallelism() - 1);
    const nb = opts.buildWorkers ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new IndexParamError(`pool size must be a positive integer, got ${size}`);
    if (!Number.isInteger(nb) || nb < 1) throw new IndexParamError(`buildWorkers must be a positive integer, got ${nb}`);
    this.buildIdleMs = opts.buildIdleMs ?? 30_000;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 30_000;
    const mk = (lane: Slot["lane"], i: number): Slot => ({
      label: `${lane}#${i}`,
      lane,
      worker: undefined,
      control: new Int32Array(1),
      ready: false,
      pending: new Map(),
      handles: new Set(),
      bytes: 0,
      incoming: 0,
      lastError: undefined,
      idleTimer: undefined,
      searchQueue: [],
      searchBatchesInFlight: 0,
    });
    this.searchSlots = Array.from({ length: n }, (_, i) => mk("search", i));
    this.buildSlots = Array.from({ length: nb }, (_, i) => mk("build", i));
  }

  /** Number of search workers. */
  get size(): number {
    return this.searchSlots.length;
  }

  /** Build an index in a build worker; resolves with its serialized bytes. */
  build(type: IndexType, metric: Metric, vectors: Float32Array, dim: number, params: BuildParams = {}, opts: { transfer?: boolean } = {}): Promise<Uint8Array> {
    const slot = leastBusy(this.buildSlots);
    const [v, transfer] = outgoing(vectors, opts.transfer === true);
    return this.call(slot, { id: 0, op: "build", type, metric, dim, params, vectors: v }, transfer) as Promise<Uint8Array>;
  }

  /** Load serialized index bytes into a search worker and keep it there under a handle. */
  load(bytes: Uint8Array, opts: { transfer?: boolean } = {}): Promise<IndexHandle> {
    const [b, transfer] = outgoing(bytes, opts.transfer === true);
    return this.place(bytes.byteLength, (id) => ({ id: 0, op: "load", handle: id, bytes: b }), transfer);
  }

  /**
   * Load the serialized index stored in the file at `path` (`sizeBytes` long)
   * into a search worker; the worker reads the file itself, so the bytes never
   * cross threads. With `hnswHeader`, the file holds only an HNSW index's hnsw
   * section (engine/index/format.ts indexFileRange), which hnswlib reads as
   * is. The file may be deleted once this settles.
   */
  loadFile(path: string, sizeBytes: number, hnswHeader?: IndexHeader): Promise<IndexHandle> {
    return this.place(sizeBytes, (id) => ({ id: 0, op: "loadFile", handle: id, path, ...(hnswHeader ? { hnswHeader } : {}) }), []);
  }

  /**
   * Keep `vectors` (count * dim floats) in a search worker as a FLAT index of
   * `metric`, without the build/serialize round trip (same transfer rules as
   * `load`: pass `{ transfer: true }` to hand the buffer over instead of
   * copying it).
   */
  loadFlat(metric: Metric, vectors: Float32Array, dim: number, opts: { transfer?: boolean } = {}): Promise<IndexHandle> {
    const [v, transfer] = outgoing(vectors, opts.transfer === true);
    return this.place(vectors.byteLength, (id) => ({ id: 0, op: "adoptFlat", handle: id, metric, dim, vectors: v }), transfer);
  }

  /**
   * The stored vectors of `rows` (rows.length * dim floats, in that order),
   * read from the index in its worker. Only for handles with `exactVectors`
   * (otherwise IndexParamError): the values are the inserted float32s.
   */
  async vectors(handle: IndexHandle, rows: ArrayLike<number>): Promise<Float32Array> {
    const st = this.state(handle);
    if (!st.handle.exactVectors) throw new IndexParamError(`a ${st.handle.type} ${st.handle.metric} index does not keep the inserted vectors`);
    const r = Int32Array.from(rows);
    return (await this.call(st.slot, { id: 0, op: "vectors", handle: handle.id, rows: r }, [r.buffer])) as Float32Array;
  }

  /**
   * Place a new index on the search worker with the fewest bytes (loaded
   * plus being loaded, so concurrent loads spread out), then fewest queued
   * requests.
   */
  private async place(sizeHint: number, req: (id: number) => WorkerRequest, transfer: ArrayBuffer[]): Promise<IndexHandle> {
    const weight = (s: Slot) => s.bytes + s.incoming;
    const slot = this.searchSlots.reduce((best, s) =>
      weight(s) < weight(best) || (weight(s) === weight(best) && s.pending.size < best.pending.size) ? s : best,
    );
    const id = this.nextHandle++;
    slot.incoming += sizeHint;
    let info: LoadInfo;
    try {
      info = (await this.call(slot, req(id), transfer)) as LoadInfo;
    } finally {
      slot.incoming -= sizeHint;
    }
    const handle: IndexHandle = Object.freeze({ id, ...info });
    this.handles.set(id, { handle, slot, lost: false });
    slot.handles.add(id);
    slot.bytes += info.memoryBytes;
    return handle;
  }

  /**
   * Top-k per query through the handle's worker. `allowBitset[row]` nonzero
   * = row allowed (rows past its end are not allowed); omit to allow all.
   *
   * Concurrent searches are batched per worker: while batches are in flight
   * on a worker, later searches queue and go over as one message, and their
   * answers come back in one message. Under load that saves a thread hop
   * per search and lets the callers' replies leave together.
   */
  async search(handle: IndexHandle, queries: readonly Float32Array[], k: number, params: SearchParams = {}, allowBitset?: Uint8Array): Promise<SearchResult[]> {
    const st = this.state(handle);
    const { dim } = st.handle;
    const packed = new Float32Array(queries.length * dim);
    queries.forEach((q, i) => {
      if (q.length !== dim) throw new IndexParamError(`query vector has dim ${q.length}, index expects ${dim}`);
      packed.set(q, i * dim);
    });
    const item: SearchItem = { handle: handle.id, queries: packed, k, params };
    const transfer: ArrayBuffer[] = [packed.buffer];
    if (allowBitset !== undefined) {
      const [bits, t] = outgoing(allowBitset, false);
      item.allow = bits;
      transfer.push(...t);
    }
    const slot = st.slot;
    const r = await new Promise<PackedResults>((resolve, reject) => {
      slot.searchQueue.push({ item, transfer, handleId: handle.id, resolve, reject });
      if (slot.searchBatchesInFlight < SEARCH_BATCHES_IN_FLIGHT) this.sendSearches(slot);
    });
    const out: SearchResult[] = new Array(r.counts.length);
    for (let i = 0, at = 0; i < r.counts.length; i++) {
      const n = r.counts[i]!;
      out[i] = { rows: r.rows.subarray(at, at + n), distances: r.distances.subarray(at, at + n) };
      at += n;
    }
    return out;
  }

  /** Send the slot's queued searches (up to SEARCH_BATCH_MAX) as one batch; the next goes when one comes back. */
  private sendSearches(slot: Slot): void {
    const batch: QueuedSearch[] = [];
    while (slot.searchQueue.length > 0 && batch.length < SEARCH_BATCH_MAX) {
      const q = slot.searchQueue.shift()!;
      const st = this.handles.get(q.handleId);
      // Unloaded or lost (its worker crashed) since the search was queued.
      if (this.closed) q.reject(new IndexWorkerError("index worker pool closed"));
      else if (st === undefined) q.reject(new IndexParamError(`index handle ${q.handleId} is not loaded (unloaded, or from another pool)`));
      else if (st.lost || st.slot !== slot) q.reject(new IndexWorkerError(`index handle ${q.handleId} was lost when its worker (${slot.label}) crashed; load it again`));
      else batch.push(q);
    }
    if (batch.length === 0) return;
    slot.searchBatchesInFlight++;
    const req: WorkerRequest = { id: 0, op: "searchBatch", items: batch.map((q) => q.item) };
    this.call(slot, req, batch.flatMap((q) => q.transfer)).then(
      (v) => {
        (v as SearchBatchOutcome[]).forEach((o, i) => {
          const q = batch[i]!;
          if (o.ok) q.resolve(o.value);
          else q.reject(fromWorker(o.error));
        });
        this.searchBatchDone(slot);
      },
      (e: Error) => {
        for (const q of batch) q.reject(e);
        this.searchBatchDone(slot);
      },
    );
  }

  private searchBatchDone(slot: Slot): void {
    slot.searchBatchesInFlight--;
    if (slot.searchQueue.length > 0) this.sendSearches(slot);
  }

  /** Drop a loaded index (a lost or already unloaded handle is fine). */
  async unload(handle: IndexHandle): Promise<void> {
    const st = this.handles.get(handle.id);
    if (st === undefined) return;
    this.handles.delete(handle.id);
    if (st.lost || this.closed) return;
    st.slot.handles.delete(handle.id);
    st.slot.bytes -= st.handle.memoryBytes;
    await this.call(st.slot, { id: 0, op: "unload", handle: handle.id }, []);
  }

  /** Stop every worker (cooperatively, see above) and wait for them; pending and later requests reject with IndexWorkerError. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const all = [...this.searchSlots, ...this.buildSlots];
    const dying: Promise<void>[] = [];
    for (const s of all) {
      if (s.idleTimer) clearTimeout(s.idleTimer);
      this.failPending(s, () => new IndexWorkerError("index worker pool closed"));
      dying.push(this.retire(s));
    }
    this.handles.clear();
    await Promise.all(dying);
  }

  /**
   * Test hook: make the worker holding `target` (a handle) or build worker
   * `target` (a number) exit with CRASH_EXIT_CODE at its next checkpoint (or
   * at once if idle), which the pool handles exactly like a crash. Resolves
   * once it has exited.
   * @internal
   */
  async _killWorker(target: IndexHandle | number): Promise<void> {
    const slot = typeof target === "number" ? this.buildSlots[target] : this.handles.get(target.id)?.slot;
    const w = slot?.worker;
    if (slot === undefined || w === undefined) return;
    const exited = new Promise<void>((resolve) => w.once("exit", () => resolve()));
    Atomics.store(slot.control, 0, 2);
    w.postMessage({ id: 0, op: "crash" } satisfies WorkerRequest);
    await exited;
  }

  // -------------------------------------------------------------- internals

  private state(handle: IndexHandle): HandleState {
    if (this.closed) throw new IndexWorkerError("index worker pool closed");
    const st = this.handles.get(handle.id);
    if (st === undefined) throw new IndexParamError(`index handle ${handle.id} is not loaded (unloaded, or from another pool)`);
    if (st.lost) throw new IndexWorkerError(`index handle ${handle.id} was lost when its worker (${st.slot.label}) crashed; load it again`);
    return st;
  }

  private call(slot: Slot, req: WorkerRequest, transfer: ArrayBuffer[]): Promise<unknown> {
    if (this.closed) return Promise.reject(new IndexWorkerError("index worker pool closed"));
    const w = slot.worker ?? this.spawn(slot);
    if (slot.idleTimer) {
      clearTimeout(slot.idleTimer);
      slot.idleTimer = undefined;
    }
    const id = this.nextRequest++;
    req.id = id;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { op: req.op, resolve, reject });
      w.ref();
      w.postMessage(req, transfer);
    });
  }

  private spawn(slot: Slot): Worker {
    const control = new SharedArrayBuffer(4);
    const w = new Worker(WORKER_URL, { name: `natsvec-index-${slot.label}`, workerData: { control, lane: slot.lane } });
    this.spawned++;
    slot.worker = w;
    slot.control = new Int32Array(control);
    slot.ready = false;
    slot.lastError = undefined;
    w.unref();
    w.on("message", (msg: WorkerResponse) => {
      if (slot.worker !== w) return;
      if ("ready" in msg) {
        slot.ready = true;
        return;
      }
      const p = slot.pending.get(msg.id);
      if (p === undefined) return;
      slot.pending.delete(msg.id);
      if (slot.pending.size === 0) this.idle(slot, w);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(fromWorker(msg.error));
    });
    w.on("error", (err) => {
      if (slot.worker === w) slot.lastError = err.message;
    });
    w.on("exit", (code) => {
      if (slot.worker !== w) return; // closed or recycled on purpose
      this.crashed(slot, code);
    });
    return w;
  }

  private idle(slot: Slot, w: Worker): void {
    w.unref();
    if (slot.lane !== "build" || this.closed) return;
    slot.idleTimer = setTimeout(() => {
      slot.idleTimer = undefined;
      if (slot.worker !== w || slot.pending.size > 0) return;
      void this.retire(slot);
    }, this.buildIdleMs);
    slot.idleTimer.unref();
  }

  /**
   * Ask the slot's worker to exit (see "Stopping workers" above) and resolve
   * when it has; its exit is expected, not a crash.
   */
  private retire(slot: Slot): Promise<void> {
    const w = slot.worker;
    if (w === undefined) return Promise.resolve();
    slot.worker = undefined;
    slot.ready = false;
    return new Promise<void>((resolve) => {
      const force = setTimeout(() => void w.terminate(), this.closeTimeoutMs);
      force.unref();
      w.once("exit", () => {
        clearTimeout(force);
        resolve();
      });
      w.ref(); // let close() see it go
      Atomics.store(slot.control, 0, 1);
      w.postMessage({ id: 0, op: "exit" } satisfies WorkerRequest);
    });
  }

  private crashed(slot: Slot, code: number): void {
    const wasReady = slot.ready;
    const why = `index worker ${slot.label} exited unexpectedly (exit code ${code}${slot.lastError ? `: ${slot.lastError}` : ""})`;
    slot.worker = undefined;
    slot.ready = false;
    this.failPending(slot, (p) => new IndexWorkerError(`${why} while running ${p.op}`));
    for (const id of slot.handles) {
      const st = this.handles.get(id);
      if (st) st.lost = true;
    }
    slot.handles.clear();
    slot.bytes = 0;
    // Replace it now, unless it never finished starting (then on next use).
    if (wasReady && !this.closed) this.spawn(slot);
  }

  private failPending(slot: Slot, mkErr: (p: Pending) => Error): void {
    const pend = [...slot.pending.values()];
    slot.pending.clear();
    for (const p of pend) p.reject(mkErr(p));
  }
}

/** An error a worker reported, as the caller's error type again. */
const fromWorker = (e: { name: string; message: string }): Error =>
  e.name === "IndexParamError" ? new IndexParamError(e.message) : Object.assign(new Error(e.message), { name: e.name });

const leastBusy = (slots: Slot[]): Slot => slots.reduce((best, s) => (s.pending.size < best.pending.size ? s : best));

const isShared = (v: ArrayBufferView): boolean => typeof SharedArrayBuffer !== "undefined" && v.buffer instanceof SharedArrayBuffer;

/**
 * What to post for a caller's typed array: shared memory as is; the array
 * itself, transferred, when the caller allows it and it spans its whole
 * buffer; otherwise a private copy of just its bytes, transferred (posting a
 * view would structured-clone its entire underlying buffer).
 */
const outgoing = <T extends Float32Array | Uint8Array>(v: T, mayTransfer: boolean): [T, ArrayBuffer[]] => {
  if (isShared(v)) return [v, []];
  const whole = v.byteOffset === 0 && v.byteLength === v.buffer.byteLength;
  // A real copy: Node's Buffer.prototype.slice returns a view of the same memory (often a socket
  // read buffer shared with other messages), and transferring that would detach it for everyone.
  const out = mayTransfer && whole ? v : ((v instanceof Float32Array ? new Float32Array(v) : new Uint8Array(v)) as T);
  return [out, [out.buffer as ArrayBuffer]];
};
