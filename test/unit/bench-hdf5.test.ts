import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import h5wasm from "h5wasm/node";
import { readAnnBenchmarksHdf5 } from "../../bench/hdf5.ts";

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
