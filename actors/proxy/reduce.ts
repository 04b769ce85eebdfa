/**
 * Reduce: merge the per-shard top-k lists of a search into one, and the
 * per-shard primary-key-ordered pages of a query into one page.
 */
import type { Metric } from "../../engine/search.ts";
import type { Pk, SearchHit } from "../streamingnode/protocol.ts";
import { InvalidParameter } from "../../schemas/errors.ts";

const cmpPk = (a: Pk, b: Pk) => (a < b ? -1 : a > b ? 1 : 0);

/** Best first: L2 ascending, IP/COSINE descending; ties by primary key. A key appears once. */
export const mergeSearchHits = (lists: readonly SearchHit[][], metric: Metric, offset: number, limit: number): SearchHit[] => {
  const all = lists.flat();
  const sign = metric === "L2" ? 1 : -1;
  all.sort((a, b) => (a.distance !== b.distance ? sign * (a.distance - b.distance) : cmpPk(a.pk, b.pk)));
  const seen = new Set<Pk>();
  const out: SearchHit[] = [];
  for (const h of all) {
    if (seen.has(h.pk)) continue;
    seen.add(h.pk);
    out.push(h);
    if (out.length >= offset + limit) break;
  }
  return out.slice(offset);
};

/** Merge shard pages (each sorted by key) and cut `[offset, offset + limit)`. */
export const mergeQueryPages = <R>(pages: readonly { pks: Pk[]; rows: R[] }[], offset: number, limit: number): { pk: Pk; row: R }[] => {
  const all: { pk: Pk; row: R }[] = [];
  for (const p of pages) p.pks.forEach((pk, i) => all.push({ pk, row: p.rows[i]! }));
  all.sort((a, b) => cmpPk(a.pk, b.pk));
  return all.slice(offset, offset + limit);
};

/** The best hit of each distinct value of `field`, in hit order (hits are best first). */
export const bestPerGroup = (hits: readonly SearchHit[], field: string): SearchHit[] => {
  const seen = new Set<unknown>();
  const out: SearchHit[] = [];
  for (const h of hits) {
    const v = h.fields[field];
    const key = typeof v === "bigint" ? `i${v}` : typeof v === "string" ? `s${v}` : `o${String(v)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(h);
  }
  return out;
};

export type Ranker = { strategy: "rrf"; k: number } | { strategy: "weighted"; weights: number[] };

/** Milvus's rerank body: `{strategy: "rrf", params: {k}}` or `{strategy: "weighted", params: {weights}}`. */
export const parseRanker = (rerank: unknown, subSearches: number): Ranker => {
  if (rerank === undefined) return { strategy: "rrf", k: 60 };
  const r = rerank as { strategy?: unknown; params?: Record<string, unknown> };
  const strategy = typeof r.strategy === "string" ? r.strategy.toLowerCase() : r.strategy;
  if (strategy === "rrf") {
    const k = r.params?.k === undefined ? 60 : Number(r.params.k);
    if (!Number.isFinite(k) || k <= 0 || k >= 16384) throw new InvalidParameter({ message: `rerank.params.k must be in (0, 16384), got ${JSON.stringify(r.params?.k)}` });
    return { strategy: "rrf", k };
  }
  if (strategy === "weighted") {
    const w = r.params?.weights;
    if (!Array.isArray(w) || w.length !== subSearches || w.some((x) => typeof x !== "number" || !Number.isFinite(x) || x < 0 || x > 1))
      throw new InvalidParameter({ message: `rerank.params.weights must be ${subSearches} numbers in [0, 1], one per sub-search` });
    return { strategy: "weighted", weights: w as number[] };
  }
  throw new InvalidParameter({ message: `rerank.strategy must be "rrf" or "weighted", got ${JSON.stringify(r.strategy)}` });
};

/** Milvus's normalization of a distance into [0, 1], larger = more similar. */
export const normalizeScore = (metric: Metric, d: number): number => {
  if (metric === "L2") return 1 - (2 * Math.atan(d)) / Math.PI;
  if (metric === "IP") return 0.5 + Math.atan(d) / Math.PI;
  return (1 + d) / 2;
};

export interface FusedHit {
  pk: Pk;
  score: number;
  fields: Record<string, unknown>;
}

/** Fuse the ranked lists of several sub-searches into one, best (highest score) first; ties by key. */
export const fuse = (lists: readonly { hits: readonly SearchHit[]; metric: Metric }[], ranker: Ranker): FusedHit[] => {
  const acc = new Map<Pk, FusedHit>();
  lists.forEach(({ hits, metric }, i) => {
    hits.forEach((h, rank) => {
      const add = ranker.strategy === "rrf" ? 1 / (ranker.k + rank + 1) : ranker.weights[i]! * normalizeScore(metric, h.distance);
      const cur = acc.get(h.pk);
      if (cur) cur.score += add;
      else acc.set(h.pk, { pk: h.pk, score: add, fields: h.fields });
    });
  });
  return [...acc.values()].sort((a, b) => (a.score !== b.score ? b.score - a.score : cmpPk(a.pk, b.pk)));
};
