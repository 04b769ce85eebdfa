/**
 * Index worker thread: builds indexes and keeps loaded ones under numeric
 * handles, answering the pool's requests one at a time (see pool.ts for the
 * protocol). Errors thrown by a request are sent back, not fatal; anything
 * that kills the thread is reported to the pool by its exit.
 */
import { collectGarbage, lowerThreadPriority } from "../../runtime/gc.ts";
import { parentPort, workerData } from "node:worker_threads";
import { buildIndexBytes, FlatIndex, HnswIndex, loadIndex, loadIndexFile } from "./index.ts";
import { setCheckpoint } from "./kernels.ts";
import { IndexParamError, type VectorIndex } from "./types.ts";
import { BUILD_THREAD_NICE, CRASH_EXIT_CODE, type PackedResults, type SearchBatchOutcome, type SearchItem, type WorkerRequest, type WorkerResponse } from "./pool.ts";

const port = parentPort;
if (port === null) throw new Error("engine/index/worker.ts must run in a worker thread");

/**
 * hnswlib's graph lives in native memory that V8 cannot see, so a dropped
 * index is only freed when a GC happens to run: collect explicitly after
 * unloads and builds.
 */
const collect = collectGarbage;

// A build worker and the build threads it starts run behind inserts and searches (BUILD_THREAD_NICE).
if ((workerData as { lane?: string }).lane === "build") lowerThreadPriority(BUILD_THREAD_NICE);

/**
 * Stop requests from the pool (control[0]: 1 = exit cleanly, 2 = exit as if
 * crashed) are honoured at checkpoints inside long loops and by the "exit" /
 * "crash" messages when idle: the thread only ever exits from its own
 * JavaScript, never while hnswlib's native code is on the stack.
 */
const control = new Int32Array((workerData as { control: SharedArrayBuffer }).control);
const stopIfAsked = (): void => {
  const c = Atomics.load(control, 0);
  if (c !== 0) process.exit(c === 1 ? 0 : CRASH_EXIT_CODE);
};
setCheckpoint(stopIfAsked);

const indexes = new Map<number, VectorIndex>();

/** What the pool needs of a thrown error to rethrow it on its side. */
const errorInfo = (e: unknown): { name: string; message: string } => {
  const err = e instanceof Error ? e : new Error(String(e));
  return { name: err.name, message: err.message };
};

/** Top-k of one search request, packed: counts per query, then rows and distances back to back. */
const searchOne = (req: SearchItem): PackedResults => {
  const idx = indexes.get(req.handle);
  if (idx === undefined) throw new Error(`index handle ${req.handle} is not loaded in this worker`);
  const { dim } = idx;
  const nq = req.queries.length / dim;
  const queries = Array.from({ length: nq }, (_, i) => req.queries.subarray(i * dim, (i + 1) * dim));
  const bits = req.allow;
  // HNSW takes the bitset itself (the read-only index reads it natively); the others ask a predicate.
  const res =
    idx instanceof HnswIndex
      ? idx.search(queries, req.k, req.params, bits)
      : idx.search(queries, req.k, req.params, bits === undefined ? undefined : (row: number): boolean => row < bits.length && bits[row] !== 0);
  const counts = new Int32Array(nq);
  let total = 0;
  res.forEach((r, i) => {
    counts[i] = r.rows.length;
    total += r.rows.length;
  });
  const rows = new Int32Array(total);
  const distances = new Float32Array(total);
  let at = 0;
  for (const r of res) {
    rows.set(r.rows, at);
    distances.set(r.distances, at);
    at += r.rows.length;
  }
  return { counts, rows, distances };
};

const handle = (req: WorkerRequest): { value: unknown; transfer: ArrayBuffer[] } => {
  switch (req.op) {
    case "build": {
      const bytes = buildIndexBytes(req.type, req.metric, req.vectors, req.dim, req.params);
      collect();
      return { value: bytes, transfer: [bytes.buffer as ArrayBuffer] };
    }
    case "load":
    case "loadFile":
    case "adoptFlat": {
      const idx = req.op === "load" ? loadIndex(req.bytes) : req.op === "loadFile" ? loadIndexFile(req.path, req.hnswHeader) : FlatIndex.adopt(req.metric, req.vectors, req.dim);
      indexes.set(req.handle, idx);
      // HNSW copies the serialized bytes into hnswlib: free them now, not whenever a GC happens to run.
      if (idx.type === "HNSW") collect();
      const info = { type: idx.type, metric: idx.metric, dim: idx.dim, count: idx.count, memoryBytes: idx.memoryBytes(), exactVectors: idx.exactVectors === true };
      return { value: info, transfer: [] };
    }
    case "vectors": {
      const idx = indexes.get(req.handle);
      if (idx === undefined) throw new Error(`index handle ${req.handle} is not loaded in this worker`);
      if (idx.rawVectors === undefined || idx.exactVectors !== true)
        throw new IndexParamError(`a ${idx.type} ${idx.metric} index does not keep the inserted vectors`);
      const out = idx.rawVectors(req.rows);
      return { value: out, transfer: [out.buffer as ArrayBuffer] };
    }
    case "search": {
      const packed = searchOne(req);
      return { value: packed, transfer: [packed.counts.buffer, packed.rows.buffer, packed.distances.buffer] as ArrayBuffer[] };
    }
    case "searchBatch": {
      const transfer: ArrayBuffer[] = [];
      const outcomes = req.items.map((item): SearchBatchOutcome => {
        try {
          const packed = searchOne(item);
          transfer.push(packed.counts.buffer as ArrayBuffer, packed.rows.buffer as ArrayBuffer, packed.distances.buffer as ArrayBuffer);
          return { ok: true, value: packed };
        } catch (e) {
          return { ok: false, error: errorInfo(e) };
        }
      });
      return { value: outcomes, transfer };
    }
    case "unload": {
      const idx = indexes.get(req.handle);
      indexes.delete(req.handle);
      if (idx instanceof HnswIndex) idx.release();
      collect();
      return { value: undefined, transfer: [] };
    }
    case "exit":
      return process.exit(0);
    case "crash":
      return process.exit(CRASH_EXIT_CODE);
  }
};

port.on("message", (req: WorkerRequest) => {
  stopIfAsked();
  let res: WorkerResponse;
  let transfer: ArrayBuffer[] = [];
  try {
    const out = handle(req);
    res = { id: req.id, ok: true, value: out.value };
    transfer = out.transfer;
  } catch (e) {
    res = { id: req.id, ok: false, error: errorInfo(e) };
  }
  port.postMessage(res, transfer);
});

port.postMessage({ ready: true } satisfies WorkerResponse);
