/**
 * Numeric building blocks shared by the index implementations: distance
 * kernels over contiguous Float32Array storage, a bounded top-k heap and a
 * seeded PRNG.
 *
 * Deliberately self-contained (only a type import from ../search.ts): this
 * module is loaded inside index worker threads, and ../search.ts pulls in the
 * error classes and with them `effect`, which would add ~0.5 s to every
 * worker's start-up.
 */
import type { Metric } from "../search.ts";

export { dot, inverseNorm, l2sq } from "../distance.ts";
import { dot, inverseNorm } from "../distance.ts";

/** Unit-length copy of `count` rows of `dim` floats (zero rows stay zero). */
export const normalizeRows = (src: Float32Array, count: number, dim: number): Float32Array => {
  const out = new Float32Array(count * dim);
  for (let i = 0, off = 0; i < count; i++, off += dim) {
    const inv = inverseNorm(src, off, dim);
    for (let j = 0; j < dim; j++) out[off + j] = src[off + j]! * inv;
  }
  return out;
};

/** Unit-length copy of one vector (a zero vector stays zero). */
export const normalized = (q: Float32Array): Float32Array => normalizeRows(q, 1, q.length);

/** Results for one query: row numbers best first, distances in natsvec conventions. */
export interface SearchResult {
  rows: Int32Array;
  distances: Float32Array;
}

/**
 * Bounded top-k selection. Keys are "smaller is better" (L2 distance, or the
 * negated score for IP/COSINE); equal keys rank by row ascending so results
 * are deterministic. A max-heap on (key, row) keeps the current worst on top.
 */
export class TopK {
  private readonly keys: Float64Array;
  private readonly rows: Int32Array;
  size = 0;
  /** Key of the current worst entry once full, +Infinity before: candidates with a larger key cannot enter. */
  worst = Infinity;

  constructor(readonly k: number) {
    this.keys = new Float64Array(Math.max(1, k));
    this.rows = new Int32Array(Math.max(1, k));
  }

  reset(): void {
    this.size = 0;
    this.worst = Infinity;
  }

  get full(): boolean {
    return this.size >= this.k;
  }

  push(key: number, row: number): void {
    const { keys, rows, k } = this;
    if (k === 0) return;
    let n = this.size;
    if (n < k) {
      let i = n++;
      this.size = n;
      while (i > 0) {
        const p = (i - 1) >> 1;
        const kp = keys[p]!;
        if (!(key > kp || (key === kp && row > rows[p]!))) break;
        keys[i] = kp;
        rows[i] = rows[p]!;
        i = p;
      }
      keys[i] = key;
      rows[i] = row;
      if (n === k) this.worst = keys[0]!;
      return;
    }
    const k0 = keys[0]!;
    if (key > k0 || (key === k0 && row >= rows[0]!)) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && (keys[r]! > keys[l]! || (keys[r] === keys[l] && rows[r]! > rows[l]!))) c = r;
      const kc = keys[c]!;
      if (!(kc > key || (kc === key && rows[c]! > row))) break;
      keys[i] = kc;
      rows[i] = rows[c]!;
      i = c;
    }
    keys[i] = key;
    rows[i] = row;
    this.worst = keys[0]!;
  }

  /** The entries best first; `negate` turns negated scores back into scores. Leaves the heap empty. */
  drain(negate: boolean): SearchResult {
    const n = this.size;
    const order = Array.from({ length: n }, (_, i) => i);
    const { keys, rows } = this;
    order.sort((a, b) => keys[a]! - keys[b]! || rows[a]! - rows[b]!);
    const outRows = new Int32Array(n);
    const outD = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const s = order[i]!;
      outRows[i] = rows[s]!;
      outD[i] = negate ? -keys[s]! : keys[s]!;
    }
    this.reset();
    return { rows: outRows, distances: outD };
  }
}

/** L2 ranks ascending; IP and COSINE rank by score descending, kept as negated keys in a TopK. */
export const negatesScore = (metric: Metric): boolean => metric !== "L2";

/** mulberry32: deterministic uniform [0, 1). */
export const prng = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

/**
 * Cooperative interruption: long loops call `checkpoint()` between units of
 * work (one HNSW insert, one query, a few thousand rows). In process it does
 * nothing; an index worker installs a hook that exits the thread there when
 * the pool asks it to stop. Exiting at a checkpoint matters: terminating a
 * worker from outside while it is inside hnswlib's native code aborts the
 * whole process (see pool.ts).
 */
let checkpointHook: (() => void) | undefined;
export const setCheckpoint = (fn: (() => void) | undefined): void => {
  checkpointHook = fn;
};
export const checkpoint = (): void => {
  if (checkpointHook !== undefined) checkpointHook();
};

export const emptyResult = (): SearchResult => ({ rows: new Int32Array(0), distances: new Float32Array(0) });
