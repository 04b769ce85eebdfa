/**
 * ann-benchmarks datasets (`.hdf5`): `train` (base vectors), `test` (queries),
 * `neighbors` (exact top-k ids) and `distances`, read with h5wasm (HDF5 compiled
 * to WebAssembly, from npm: no native build, no download at run time).
 */
import { statSync } from "node:fs";
import { basename } from "node:path";
import h5wasm from "h5wasm/node";
import type { Dataset, Metric } from "./datasets.ts";

export interface AnnBenchmarksDataset {
  readonly dim: number;
  /** Base vectors, row-major. */
  readonly train: Float32Array;
  readonly trainCount: number;
  readonly test: Float32Array;
  readonly testCount: number;
  /** Exact neighbor ids per query, row-major (`k` per query), if the file has them. */
  readonly neighbors?: Int32Array;
  readonly k?: number;
  /** "euclidean", "angular", ... from the file's `distance` attribute, if present. */
  readonly distance?: string;
}

const asFloat32 = (v: unknown, what: string): Float32Array => {
  if (v instanceof Float32Array) return v;
  if (v instanceof Float64Array) return Float32Array.from(v);
  throw new Error(`${what}: expected a float dataset, got ${Object.prototype.toString.call(v)}`);
};

const asInt32 = (v: unknown, what: string): Int32Array => {
  if (v instanceof Int32Array) return v;
  if (v instanceof BigInt64Array) return Int32Array.from(v, (x) => Number(x));
  if (v instanceof Float64Array || v instanceof Float32Array || v instanceof Uint32Array) return Int32Array.from(v);
  throw new Error(`${what}: expected an integer dataset, got ${Object.prototype.toString.call(v)}`);
};

export const readAnnBenchmarksHdf5 = async (path: string): Promise<AnnBenchmarksDataset> => {
  await h5wasm.ready;
  const f = new h5wasm.File(path, "r");
  try {
    const ds = (name: string) => {
      const d = f.get(name);
      if (!d || !(d instanceof h5wasm.Dataset)) throw new Error(`${path}: no dataset '${name}' (ann-benchmarks files have train, test, neighbors)`);
      return d;
    };
    const train = ds("train");
    const test = ds("test");
    const [trainCount, dim] = train.shape as [number, number];
    const [testCount, testDim] = test.shape as [number, number];
    if (testDim !== dim) throw new Error(`${path}: test vectors have dim ${testDim}, train vectors ${dim}`);
    const keys = f.keys();
    const nb = keys.includes("neighbors") ? ds("neighbors") : undefined;
    const distance = f.attrs["distance"]?.value;
    return {
      dim,
      train: asFloat32(train.value, `${path}: train`),
      trainCount,
      test: asFloat32(test.value, `${path}: test`),
      testCount,
      ...(nb ? { neighbors: asInt32(nb.value, `${path}: neighbors`), k: (nb.shape as [number, number])[1] } : {}),
      ...(typeof distance === "string" ? { distance } : {}),
    };
  } finally {
    f.close();
  }
};

/** ann-benchmarks distance name (the `distance` attribute, else the file name: `glove-100-angular.hdf5`) -> natsvec metric. */
export const annBenchmarksMetric = (distance: string | undefined, path: string): Metric => {
  const d = (distance ?? basename(path)).toLowerCase();
  if (/euclidean|\bl2\b/.test(d)) return "L2";
  if (/angular|cosine/.test(d)) return "COSINE";
  if (/\bdot\b|\bip\b|inner/.test(d)) return "IP";
  throw new Error(
    `${path}: metric ${distance ? `'${distance}' (distance attribute)` : "not found in the distance attribute nor the file name"} is not one natsvec supports (euclidean -> L2, angular -> COSINE, dot -> IP)`,
  );
};

/**
 * An ann-benchmarks file as a bench dataset: `train` as the base (first `n` rows if given), the first
 * `nq` (default 1000) `test` vectors as queries, `neighbors` as the ground truth when the whole train
 * set is used (otherwise it is recomputed by groundTruth()).
 */
export const hdf5Dataset = async (path: string, opts: { n?: number; nq?: number } = {}): Promise<Dataset> => {
  const f = await readAnnBenchmarksHdf5(path);
  const metric = annBenchmarksMetric(f.distance, path);
  const n = Math.min(opts.n ?? f.trainCount, f.trainCount);
  const nq = Math.min(opts.nq ?? 1000, f.testCount);
  const { dim } = f;
  const full = n === f.trainCount;
  const truth = full && f.neighbors && f.k ? { ids: f.neighbors.subarray(0, nq * f.k), k: f.k, source: `${path} (neighbors)` } : undefined;
  const file = basename(path);
  return {
    name: `hdf5-${file.replace(/\.hdf5$/, "")}-${statSync(path).size}-${n}x${dim}-q${nq}-${metric}`,
    metric,
    base: { data: full ? f.train : f.train.slice(0, n * dim), n, dim },
    queries: { data: f.test.slice(0, nq * dim), n: nq, dim },
    ...(truth ? { truth } : {}),
    description:
      `ann-benchmarks ${file}: ${n} x ${dim} base${full ? "" : ` (first ${n} of ${f.trainCount})`}, ${nq} of ${f.testCount} test queries, ${metric}` +
      (f.distance ? ` (distance '${f.distance}')` : " (metric from the file name)") +
      (truth ? `; ground truth from the file's neighbors (k=${f.k})` : f.neighbors ? "; ground truth recomputed (base cut by --n)" : "; ground truth computed"),
  };
};
