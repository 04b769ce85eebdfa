/**
 * ann-benchmarks datasets (`.hdf5`): `train` (base vectors), `test` (queries),
 * `neighbors` (exact top-k ids) and `distances`, read with h5wasm (HDF5 compiled
 * to WebAssembly, from npm: no native build, no download at run time).
 */
import h5wasm from "h5wasm/node";

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
