/**
 * Which index builds a flushed segment still needs: one per index definition
 * of the collection whose field the segment has no index for yet. Pure.
 */
import type { IndexDefinition } from "../../schemas/collection.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import type { SegmentRecord } from "../../schemas/segment.ts";

export const indexesToBuild = (coll: CollectionRecord, seg: SegmentRecord): IndexDefinition[] => {
  if (seg.state === "Dropped" || seg.rowCount === 0) return [];
  return coll.indexes.filter((def) => {
    const have = seg.indexes[def.fieldName];
    return !have || have.indexName !== def.indexName || have.indexType !== def.indexType;
  });
};

/** A segment is ready to be served by a query node once every defined index is built. */
export const segmentReady = (coll: CollectionRecord, seg: SegmentRecord): boolean =>
  seg.state !== "Dropped" && indexesToBuild(coll, seg).length === 0;
