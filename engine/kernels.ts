/**
 * Loops over every float of an insert batch: the finite check of the proxy and the inverse norms
 * the growing segment keeps for COSINE. V8 runs them element by element (~0.3 ms each per
 * 1000 x 128 batch); native/kernels.c runs them vectorized. The JavaScript versions below are used
 * when the addon is missing (`npm install` did not build it) and give the same results bit for bit.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { dot } from "./distance.ts";

interface KernelsAddon {
  firstNonFinite(v: Float32Array): number;
  inverseNorms(v: Float32Array, dim: number, out: Float64Array, at: number): void;
}

/** Where `npm install` builds native/kernels.c; this file and dist/ both sit one level below the root. */
const ADDON_PATH = join(dirname(fileURLToPath(import.meta.url)), "..", "build", "Release", "natsvec_kernels.node");

const addon: KernelsAddon | undefined = (() => {
  try {
    return createRequire(import.meta.url)(ADDON_PATH) as KernelsAddon;
  } catch {
    return undefined;
  }
})();

/** Whether the native kernels are in use (else the JavaScript loops). */
export const nativeKernels = addon !== undefined;

export const firstNonFiniteJs = (v: Float32Array): number => {
  let bad = 0;
  for (let j = 0; j < v.length; j++) bad += v[j]! * 0; // NaN as soon as one value is NaN or infinite
  if (bad === 0) return -1;
  for (let j = 0; j < v.length; j++) if (!Number.isFinite(v[j]!)) return j;
  return -1;
};

export const inverseNormsJs = (v: Float32Array, dim: number, out: Float64Array, at: number): void => {
  const rows = v.length / dim;
  for (let r = 0; r < rows; r++) {
    const sq = dot(v, r * dim, v, r * dim, dim);
    out[at + r] = sq > 0 ? 1 / Math.sqrt(sq) : 0;
  }
};

/** Index of the first NaN or ±Infinity in `v`, or -1. */
export const firstNonFinite: (v: Float32Array) => number = addon ? (v) => addon.firstNonFinite(v) : firstNonFiniteJs;

/** `out[at + r] = 1 / |row r|` for each `dim`-float row of `v` (0 for a zero row). */
export const inverseNorms: (v: Float32Array, dim: number, out: Float64Array, at: number) => void = addon
  ? (v, dim, out, at) => addon.inverseNorms(v, dim, out, at)
  : inverseNormsJs;
