import { describe, expect, it } from "vitest";
import { firstNonFinite, firstNonFiniteJs, inverseNorms, inverseNormsJs, nativeKernels } from "./kernels.ts";

const random = (n: number, seed: number) => {
  const v = new Float32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    v[i] = (x / 2 ** 32 - 0.5) * 10;
  }
  return v;
};

describe("vector kernels", () => {
  it("are the native ones after npm install", () => {
    expect(nativeKernels).toBe(true);
  });

  it("find the first non-finite value, in any block", () => {
    for (const n of [0, 1, 7, 1024, 1025, 128_000]) {
      const v = random(n, n + 1);
      expect(firstNonFinite(v)).toBe(-1);
      for (const bad of [NaN, Infinity, -Infinity]) {
        for (const at of [0, n >> 1, n - 1].filter((i) => i >= 0 && i < n)) {
          const w = v.slice();
          w[at] = bad;
          if (at + 3 < n) w[at + 3] = NaN; // a later one must not win
          expect([firstNonFinite(w), firstNonFiniteJs(w)]).toEqual([at, at]);
        }
      }
    }
    // Largest finite float32 and subnormals are finite.
    expect(firstNonFinite(new Float32Array([3.4028234663852886e38, -3.4028234663852886e38, 1e-45, 0, -0]))).toBe(-1);
  });

  it("look at the view, not the whole buffer", () => {
    const v = random(64, 3);
    v[0] = NaN;
    expect(firstNonFinite(v.subarray(1))).toBe(-1);
    expect(firstNonFinite(v.subarray(0, 8))).toBe(0);
  });

  it("compute inverse norms bit for bit like the JavaScript loop", () => {
    for (const dim of [2, 3, 5, 128, 131]) {
      const rows = 37;
      const v = random(rows * dim, dim);
      v.fill(0, 4 * dim, 5 * dim); // a zero row
      const a = new Float64Array(rows + 3).fill(-1);
      const b = new Float64Array(rows + 3).fill(-1);
      inverseNorms(v, dim, a, 2);
      inverseNormsJs(v, dim, b, 2);
      expect(Array.from(a)).toEqual(Array.from(b));
      expect([a[0], a[1], a[2 + rows]]).toEqual([-1, -1, -1]); // only [at, at + rows) written
      expect(a[2 + 4]).toBe(0);
      let sq = 0;
      for (let j = 0; j < dim; j++) sq += v[7 * dim + j]! ** 2;
      expect(a[2 + 7]).toBeCloseTo(1 / Math.sqrt(sq), 12);
    }
  });

  it("refuse arguments that do not fit", () => {
    const v = random(10, 1);
    expect(() => inverseNorms(v, 3, new Float64Array(4), 0)).toThrow(/dim must divide/);
    expect(() => inverseNorms(v, 5, new Float64Array(2), 1)).toThrow(/output too short/);
    expect(() => firstNonFinite(new Float64Array(3) as unknown as Float32Array)).toThrow(/Float32Array/);
  });
});
