import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { encodeVecs, groundTruth, parseIdx, readFvecs, readIvecs, recallAtK, syntheticClustered, writeVecs } from "../../bench/datasets.ts";

const dir = mkdtempSync(join(tmpdir(), "bench-loaders-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("bench dataset loaders", () => {
  // A .fvecs / .ivecs file written to disk reads back bit-exactly, including awkward floats.
  it("fvecs and ivecs round-trip exactly", () => {
    const f = new Float32Array([0, -1.5, 3.25, Math.fround(Math.PI), -0, 1e-30, 3.4e38, 7]);
    writeVecs(join(dir, "a.fvecs"), f, 4);
    const got = readFvecs(join(dir, "a.fvecs"));
    expect(got.n).toBe(2);
    expect(got.dim).toBe(4);
    expect(Array.from(got.data)).toEqual(Array.from(f));
    expect(Object.is(got.data[4], -0)).toBe(true);

    const ids = new Int32Array([5, -1, 2147483647, -2147483648, 0, 9]);
    writeVecs(join(dir, "gt.ivecs"), ids, 3);
    const gi = readIvecs(join(dir, "gt.ivecs"));
    expect(gi.n).toBe(2);
    expect(gi.dim).toBe(3);
    expect(Array.from(gi.data)).toEqual(Array.from(ids));
    expect(readIvecs(join(dir, "gt.ivecs"), 1).n).toBe(1);
  });

  // .bvecs (uint8 components) widen to float32; a truncated file is refused.
  it("bvecs and truncated files", () => {
    const b = Buffer.alloc(2 * (4 + 3));
    b.writeInt32LE(3, 0);
    b.set([1, 2, 255], 4);
    b.writeInt32LE(3, 7);
    b.set([0, 128, 7], 11);
    writeFileSync(join(dir, "b.bvecs"), b);
    expect(Array.from(readFvecs(join(dir, "b.bvecs")).data)).toEqual([1, 2, 255, 0, 128, 7]);
    writeFileSync(join(dir, "bad.fvecs"), encodeVecs(new Float32Array([1, 2, 3, 4]), 2).subarray(0, 10));
    expect(() => readFvecs(join(dir, "bad.fvecs"))).toThrow(/multiple of the record size/);
  });

  // IDX (MNIST format), gzipped: header dims multiply into the vector dimension.
  it("IDX images (gzipped)", () => {
    const header = Buffer.from([0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2]);
    const pixels = Buffer.from([0, 1, 2, 3, 250, 251, 252, 253]);
    const got = parseIdx(gzipSync(Buffer.concat([header, pixels])));
    expect(got.n).toBe(2);
    expect(got.dim).toBe(4);
    expect(Array.from(got.data)).toEqual([0, 1, 2, 3, 250, 251, 252, 253]);
  });

  // Synthetic data is deterministic per seed; ground truth is cached and a scan of base points finds themselves.
  it("synthetic data is seeded and ground truth is cached", () => {
    const a = syntheticClustered({ n: 300, dim: 8, nq: 5, seed: 7 });
    const b = syntheticClustered({ n: 300, dim: 8, nq: 5, seed: 7 });
    expect(Array.from(a.base.data)).toEqual(Array.from(b.base.data));
    expect(Array.from(a.queries.data)).not.toEqual(Array.from(a.base.data.subarray(0, 40)));
    const ds = { ...a, name: "selftest", queries: { data: a.base.data.slice(0, 5 * 8), n: 5, dim: 8 } };
    const gt = groundTruth(ds, { k: 3, cacheDir: dir });
    expect(gt.cached).toBe(false);
    for (let q = 0; q < 5; q++) expect(gt.ids[q * 3]).toBe(q);
    expect(groundTruth(ds, { k: 3, cacheDir: dir }).cached).toBe(true);
    const rows = (q: number) => Array.from(gt.ids.subarray(q * 3, q * 3 + 3));
    expect(recallAtK([0, 1, 2, 3, 4].map(rows), gt.ids, 3)).toBe(1);
    expect(recallAtK([[0], [1], [2], [3], [4]], gt.ids, 3)).toBeCloseTo(1 / 3, 10);
  });
});
