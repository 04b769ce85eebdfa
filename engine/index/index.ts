/**
 * Vector indexes for sealed segments: FLAT (exact), HNSW (hnswlib's graph: built and
 * loaded by natsvec's addon, hnswlib-node without it),
 * IVF_FLAT and IVF_SQ8 (k-means in TypeScript), a common serialized format,
 * and a worker-thread pool (pool.ts) so builds and searches stay off the
 * caller's event loop.
 */
import type { Metric } from "../search.ts";
import { FlatIndex } from "./flat.ts";
import { readFileSync } from "node:fs";
import { decodeIndex, type IndexHeader } from "./format.ts";
import { HnswIndex } from "./hnsw.ts";
import { IvfIndex } from "./ivf.ts";
import { IndexParamError, type BuildParams, type IndexType, type VectorIndex } from "./types.ts";

export * from "./types.ts";
export { FlatIndex } from "./flat.ts";
export { HnswIndex } from "./hnsw.ts";
export { IvfIndex } from "./ivf.ts";
export { IndexWorkerError, IndexWorkerPool, type IndexHandle, type PoolOptions } from "./pool.ts";

/** Build an index over `vectors` (count * dim floats, row-major; row i = vectors[i*dim..]). The input is not retained. */
export const buildIndex = (type: IndexType, metric: Metric, vectors: Float32Array, dim: number, params: BuildParams = {}): VectorIndex => {
  switch (type) {
    case "FLAT":
      return FlatIndex.build(metric, vectors, dim);
    case "HNSW":
      return HnswIndex.build(metric, vectors, dim, params);
    case "IVF_FLAT":
    case "IVF_SQ8":
      return IvfIndex.build(type, metric, vectors, dim, params);
    default:
      throw new IndexParamError(`unsupported index type '${String(type)}'`);
  }
};

/** `buildIndex(...).serialize()`; an HNSW build goes straight from the builder's file to the bytes, never loaded for search. */
export const buildIndexBytes = (type: IndexType, metric: Metric, vectors: Float32Array, dim: number, params: BuildParams = {}): Uint8Array =>
  type === "HNSW" ? HnswIndex.buildBytes(metric, vectors, dim, params) : buildIndex(type, metric, vectors, dim, params).serialize();

/**
 * Load an index from `serialize()` bytes. FLAT and IVF indexes keep views
 * into `bytes` (no copy when it is 4-byte aligned), so do not mutate it
 * afterwards; HNSW copies into hnswlib's own memory.
 */
export const loadIndex = (bytes: Uint8Array): VectorIndex => {
  const d = decodeIndex(bytes);
  switch (d.header.type) {
    case "FLAT":
      return FlatIndex.decode(d);
    case "HNSW":
      return HnswIndex.decode(d);
    case "IVF_FLAT":
    case "IVF_SQ8":
      return IvfIndex.decode(d);
  }
};

/**
 * Load an index from a file: with `hnswHeader`, the file holds just an HNSW
 * object's hnsw section (format.ts indexFileRange; what a query node writes),
 * which hnswlib reads without passing through JavaScript memory; without it,
 * the file holds `serialize()` bytes. The file is not retained: the caller may
 * delete it once this returns.
 */
export const loadIndexFile = (path: string, hnswHeader?: IndexHeader): VectorIndex =>
  hnswHeader !== undefined ? HnswIndex.loadPayloadFile(hnswHeader, path) : loadIndex(readFileSync(path));
