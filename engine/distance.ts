/**
 * Distance kernels over Float32Array rows, shared by exact search (engine/search.ts)
 * and the vector indexes (engine/index). Manually unrolled: V8 keeps four
 * independent accumulators in registers.
 */

/** Squared Euclidean distance between a[aOff..aOff+dim) and b[bOff..bOff+dim). */
export const l2sq = (a: Float32Array, aOff: number, b: Float32Array, bOff: number, dim: number): number => {
  let s0 = 0,
    s1 = 0,
    s2 = 0,
    s3 = 0;
  let j = 0;
  for (; j + 3 < dim; j += 4) {
    const d0 = a[aOff + j]! - b[bOff + j]!;
    const d1 = a[aOff + j + 1]! - b[bOff + j + 1]!;
    const d2 = a[aOff + j + 2]! - b[bOff + j + 2]!;
    const d3 = a[aOff + j + 3]! - b[bOff + j + 3]!;
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; j < dim; j++) {
    const d = a[aOff + j]! - b[bOff + j]!;
    s0 += d * d;
  }
  return s0 + s1 + s2 + s3;
};

/** Dot product of a[aOff..aOff+dim) and b[bOff..bOff+dim). */
export const dot = (a: Float32Array, aOff: number, b: Float32Array, bOff: number, dim: number): number => {
  let s0 = 0,
    s1 = 0,
    s2 = 0,
    s3 = 0;
  let j = 0;
  for (; j + 3 < dim; j += 4) {
    s0 += a[aOff + j]! * b[bOff + j]!;
    s1 += a[aOff + j + 1]! * b[bOff + j + 1]!;
    s2 += a[aOff + j + 2]! * b[bOff + j + 2]!;
    s3 += a[aOff + j + 3]! * b[bOff + j + 3]!;
  }
  for (; j < dim; j++) s0 += a[aOff + j]! * b[bOff + j]!;
  return s0 + s1 + s2 + s3;
};

/** 1/|v| for v = a[off..off+dim) (0 for a zero vector). */
export const inverseNorm = (a: Float32Array, off: number, dim: number): number => {
  const sq = dot(a, off, a, off, dim);
  return sq > 0 ? 1 / Math.sqrt(sq) : 0;
};
