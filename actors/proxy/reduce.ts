/**
 * Reduce: merge the per-shard top-k lists of a search into one, and the
 * per-shard primary-key-ordered pages of a query into one page.
 */
import type { Metric } from "../../engine/search.ts";
import type { Pk, SearchHit } from "../streamingnode/protocol.ts";

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
