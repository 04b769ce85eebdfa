/**
 * Exact (FLAT) vector search over a growing segment and top-k merging.
 *
 * Distances: L2 = squared Euclidean (smaller is better); IP = dot product and
 * COSINE = dot / (|a||b|) (larger is better; 0 when either vector is zero).
 * Every ordering breaks distance ties by primary key ascending, so results
 * are deterministic across segments and shards.
 */
import { InvalidParameter } from "../schemas/errors.ts";
import type { GrowingSegment } from "./growing.ts";

export type Metric = "L2" | "IP" | "COSINE";

export interface Hit {
  pk: bigint | string;
  distance: number;
  /** Caller-chosen tag (e.g. segment number). */
  segment: number;
  row: number;
}

export { dot, inverseNorm, l2sq } from "./distance.ts";
import { dot, inverseNorm, l2sq } from "./distance.ts";

/** The metric's distance between two vectors. */
export const distance = (metric: Metric, a: Float32Array, aOff: number, b: Float32Array, bOff: number, dim: number): number => {
  switch (metric) {
    case "L2":
      return l2sq(a, aOff, b, bOff, dim);
    case "IP":
      return dot(a, aOff, b, bOff, dim);
    case "COSINE":
      return dot(a, aOff, b, bOff, dim) * inverseNorm(a, aOff, dim) * inverseNorm(b, bOff, dim);
  }
};

/** Unit-length copy of `q` (a zero vector stays zero); for indexes that want pre-normalized COSINE queries. */
export const normalizeQuery = (q: Float32Array): Float32Array => {
  const inv = inverseNorm(q, 0, q.length);
  const out = new Float32Array(q.length);
  for (let j = 0; j < q.length; j++) out[j] = q[j]! * inv;
  return out;
};

/** Is distance `a` better than `b` under `metric` (ties are not better)? */
export const isBetter = (metric: Metric, a: number, b: number): boolean => (metric === "L2" ? a < b : a > b);

const cmpPk = (a: bigint | string, b: bigint | string): number => {
  if (a === b) return 0;
  if (typeof a === typeof b) return a < b ? -1 : 1;
  return String(a) < String(b) ? -1 : 1;
};

/** Compare two hits best-first: negative if `a` ranks before `b`. */
export const compareHits = (metric: Metric, a: Hit, b: Hit): number => {
  if (a.distance !== b.distance) return isBetter(metric, a.distance, b.distance) ? -1 : 1;
  return cmpPk(a.pk, b.pk);
};

export interface FlatSearchArgs {
  segment: GrowingSegment;
  tag: number;
  field: string;
  queries: readonly Float32Array[];
  metric: Metric;
  k: number;
  /** Rows for which this returns false are skipped. */
  predicate?: (row: number) => boolean;
  /** MVCC: ignore rows inserted after ts, and count as live rows deleted after ts. */
  maxTs?: bigint;
}

/**
 * Exact top-k per query over one segment, best first. Skips deleted rows (as
 * of `maxTs` when given) and rows failing the predicate (evaluated once per
 * row, not per query). One bounded max-heap of size k per query, keyed so
 * that smaller is better (L2 distance, negated IP/COSINE score).
 */
export const searchSegmentFlat = (args: FlatSearchArgs): Hit[][] => {
  const { segment, tag, field, queries, metric, predicate, maxTs } = args;
  const nq = queries.length;
  const k = Math.max(0, Math.floor(args.k));
  const { chunks, chunkShift, chunkMask, dim, invNorms } = segment.vectors(field);
  for (const q of queries)
    if (q.length !== dim) throw new InvalidParameter({ message: `query vector has dim ${q.length}, field '${field}' expects ${dim}` });
  if (k === 0 || nq === 0) return queries.map(() => []);

  const isL2 = metric === "L2";
  const isCos = metric === "COSINE";
  const invQ = new Float64Array(nq);
  if (isCos) for (let qi = 0; qi < nq; qi++) invQ[qi] = inverseNorm(queries[qi]!, 0, dim);

  // Heaps: for query qi, slots [qi*k, qi*k+size[qi]).
  const keys = new Float64Array(nq * k);
  const rowsH = new Int32Array(nq * k);
  const size = new Int32Array(nq);
  const worst = new Float64Array(nq).fill(Infinity); // key at heap top once full

  const pkOf = (row: number): bigint | string => segment.pk(row);
  // a worse than b (max-heap order)
  const worse = (ka: number, ra: number, kb: number, rb: number): boolean =>
    ka > kb || (ka === kb && cmpPk(pkOf(ra), pkOf(rb)) > 0);

  const push = (qi: number, key: number, row: number): void => {
    const base = qi * k;
    let n = size[qi]!;
    if (n < k) {
      let i = n++;
      size[qi] = n;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!worse(key, row, keys[base + p]!, rowsH[base + p]!)) break;
        keys[base + i] = keys[base + p]!;
        rowsH[base + i] = rowsH[base + p]!;
        i = p;
      }
      keys[base + i] = key;
      rowsH[base + i] = row;
      if (n === k) worst[qi] = keys[base]!;
      return;
    }
    // full: replace the top if the candidate is better
    if (!worse(keys[base]!, rowsH[base]!, key, row)) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && worse(keys[base + r]!, rowsH[base + r]!, keys[base + l]!, rowsH[base + l]!)) c = r;
      if (!worse(keys[base + c]!, rowsH[base + c]!, key, row)) break;
      keys[base + i] = keys[base + c]!;
      rowsH[base + i] = rowsH[base + c]!;
      i = c;
    }
    keys[base + i] = key;
    rowsH[base + i] = row;
    worst[qi] = keys[base]!;
  };

  const deleted = segment.deletedFlags();
  const insertTs = segment.insertTimestamps();
  let end = segment.rowCount;
  let checkInsertTs = false;
  if (maxTs !== undefined) {
    if (segment.insertTsMonotonic) end = segment.visiblePrefix(maxTs);
    else checkInsertTs = true;
  }

  for (let row = 0; row < end; row++) {
    if (deleted[row] !== 0 && (maxTs === undefined || segment.deleteTsOf(row)! <= maxTs)) continue;
    if (checkInsertTs && insertTs[row]! > maxTs!) continue;
    if (predicate !== undefined && !predicate(row)) continue;
    const data = chunks[row >>> chunkShift]!;
    const off = (row & chunkMask) * dim;
    for (let qi = 0; qi < nq; qi++) {
      const q = queries[qi]!;
      let key: number;
      if (isL2) key = l2sq(q, 0, data, off, dim);
      else if (isCos) key = -(dot(q, 0, data, off, dim) * invQ[qi]! * invNorms[row]!);
      else key = -dot(q, 0, data, off, dim);
      if (key > worst[qi]!) continue; // cannot enter a full heap
      push(qi, key, row);
    }
  }

  const out: Hit[][] = new Array(nq);
  for (let qi = 0; qi < nq; qi++) {
    const base = qi * k;
    const n = size[qi]!;
    const hits: Hit[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const key = keys[base + i]!;
      const row = rowsH[base + i]!;
      hits[i] = { pk: pkOf(row), distance: isL2 ? key : 0 - key, segment: tag, row };
    }
    hits.sort((a, b) => compareHits(metric, a, b));
    out[qi] = hits;
  }
  return out;
};

/**
 * Merge per-source result lists (each already sorted best-first) into the
 * global top k. Ties by pk ascending; a pk seen more than once keeps only its
 * best hit.
 */
export const mergeTopK = (lists: readonly Hit[][], metric: Metric, k: number): Hit[] => {
  const out: Hit[] = [];
  if (k <= 0) return out;
  // Heap of list indices, ordered by their current head (best at top).
  const pos = new Int32Array(lists.length);
  const heap: number[] = [];
  const head = (li: number): Hit => lists[li]![pos[li]!]!;
  const before = (a: number, b: number): boolean => compareHits(metric, head(a), head(b)) < 0;
  const siftDown = (i: number): void => {
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      let c = l;
      if (l + 1 < n && before(heap[l + 1]!, heap[l]!)) c = l + 1;
      if (!before(heap[c]!, heap[i]!)) return;
      [heap[i], heap[c]] = [heap[c]!, heap[i]!];
      i = c;
    }
  };
  for (let li = 0; li < lists.length; li++) if (lists[li]!.length > 0) heap.push(li);
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(i);
  const seen = new Set<bigint | string>();
  while (heap.length > 0 && out.length < k) {
    const li = heap[0]!;
    const h = head(li);
    if (!seen.has(h.pk)) {
      seen.add(h.pk);
      out.push(h);
    }
    pos[li] = pos[li]! + 1;
    if (pos[li]! >= lists[li]!.length) {
      const last = heap.pop()!;
      if (heap.length === 0) break;
      heap[0] = last;
    }
    siftDown(0);
  }
  return out;
};
