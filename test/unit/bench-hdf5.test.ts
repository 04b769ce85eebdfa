import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import h5wasm from "h5wasm/node";
import { annBenchmarksMetric, hdf5Dataset, readAnnBenchmarksHdf5 } from "../../bench/hdf5.ts";
import { fvecsDataset, groundTruth, scanTopK, syntheticClustered, writeVecs } from "../../bench/datasets.ts";

const dir = mkdtempSync(join(tmpdir(), "natsvec-hdf5-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("ann-benchmarks .hdf5 loader", () => {
  // A small file in ann-benchmarks' layout (train/test/neighbors + distance attribute) reads back exactly.
  it("reads train, test and neighbors", async () => {
    await h5wasm.ready;
    const path = join(dir, "tiny-euclidean.hdf5");
    const train = Float32Array.from({ length: 5 * 3 }, (_, i) => i * 0.5);
    const test = Float32Array.from({ length: 2 * 3 }, (_, i) => -i);
    const neighbors = Int32Array.from([4, 3, 0, 1]);
    const f = new h5wasm.File(path, "w");
    f.create_dataset({ name: "train", data: train, shape: [5, 3], dtype: "<f" });
    f.create_dataset({ name: "test", data: test, shape: [2, 3], dtype: "<f" });
    f.create_dataset({ name: "neighbors", data: neighbors, shape: [2, 2], dtype: "<i" });
    f.create_attribute("distance", "euclidean");
    f.close();
    const d = await readAnnBenchmarksHdf5(path);
    expect([d.dim, d.trainCount, d.testCount, d.k, d.distance]).toEqual([3, 5, 2, 2, "euclidean"]);
    expect(d.train).toEqual(train);
    expect(d.test).toEqual(test);
    expect(d.neighbors).toEqual(neighbors);
  });

  // The bench scenario's dataset: metric from the attribute or the file name, the file's neighbours used as
  // ground truth only while the whole train set is the base (a --n cut recomputes them).
  it("hdf5Dataset: metric, shipped neighbours, --n cut", async () => {
    await h5wasm.ready;
    const syn = syntheticClustered({ n: 300, dim: 8, nq: 12, seed: 3, metric: "COSINE" });
    const k = 20;
    const nb = new Int32Array(12 * k);
    for (let q = 0; q < 12; q++) nb.set(scanTopK(syn.base, syn.queries.data, q * 8, k, "COSINE").ids, q * k);
    const path = join(dir, "toy-8-angular.hdf5");
    const f = new h5wasm.File(path, "w");
    f.create_dataset({ name: "train", data: syn.base.data, shape: [300, 8], dtype: "<f" });
    f.create_dataset({ name: "test", data: syn.queries.data, shape: [12, 8], dtype: "<f" });
    f.create_dataset({ name: "neighbors", data: nb, shape: [12, k], dtype: "<i" });
    f.close();
    const whole = await hdf5Dataset(path, { nq: 10 });
    expect([whole.metric, whole.base.n, whole.queries.n, whole.truth?.k]).toEqual(["COSINE", 300, 10, k]);
    const gt = groundTruth(whole, { k: 10, cacheDir: dir });
    expect(gt.path).toBe(whole.truth!.source);
    expect(Array.from(gt.ids.subarray(0, 10))).toEqual(Array.from(nb.subarray(0, 10)));
    const cut = await hdf5Dataset(path, { n: 100, nq: 10 });
    expect([cut.base.n, cut.truth]).toEqual([100, undefined]);
    expect(groundTruth(cut, { k: 10, cacheDir: dir }).ids.every((id) => id < 100)).toBe(true);
    expect([annBenchmarksMetric("euclidean", "x.hdf5"), annBenchmarksMetric(undefined, "glove-100-angular.hdf5")]).toEqual(["L2", "COSINE"]);
    expect(() => annBenchmarksMetric("jaccard", "kosarak-jaccard.hdf5")).toThrow(/not one natsvec supports/);
  });

  // The fvecs scenario's dataset: a groundtruth .ivecs is used only when the whole base file is loaded.
  it("fvecsDataset: ground truth file only for the whole base", () => {
    const syn = syntheticClustered({ n: 200, dim: 4, nq: 5, seed: 5 });
    const nb = new Int32Array(5 * 10);
    for (let q = 0; q < 5; q++) nb.set(scanTopK(syn.base, syn.queries.data, q * 4, 10, "L2").ids, q * 10);
    writeVecs(join(dir, "t_base.fvecs"), syn.base.data, 4);
    writeVecs(join(dir, "t_query.fvecs"), syn.queries.data, 4);
    writeVecs(join(dir, "t_gt.ivecs"), nb, 10);
    const whole = fvecsDataset({ base: join(dir, "t_base.fvecs"), query: join(dir, "t_query.fvecs"), gt: join(dir, "t_gt.ivecs") });
    expect([whole.base.n, whole.queries.n, whole.truth?.k]).toEqual([200, 5, 10]);
    expect(Array.from(groundTruth(whole, { k: 10, cacheDir: dir }).ids)).toEqual(Array.from(nb));
    expect(fvecsDataset({ base: join(dir, "t_base.fvecs"), query: join(dir, "t_query.fvecs"), gt: join(dir, "t_gt.ivecs"), n: 50 }).truth).toBeUndefined();
  });

  // A file without the ann-benchmarks datasets is refused with a message naming what is missing.
  it("refuses other files", async () => {
    await h5wasm.ready;
    const path = join(dir, "other.hdf5");
    const f = new h5wasm.File(path, "w");
    f.create_dataset({ name: "x", data: Float32Array.from([1, 2]), shape: [2], dtype: "<f" });
    f.close();
    await expect(readAnnBenchmarksHdf5(path)).rejects.toThrow(/no dataset 'train'/);
  });
});
