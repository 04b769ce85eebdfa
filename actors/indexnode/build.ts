/**
 * One index build: read a flushed segment's vector log from the Object Store
 * (checksum verified), build the index in a worker thread, store it, and
 * record it on the segment. Idempotent: a redelivered task finds the index
 * recorded and does nothing.
 */
import { metaKeys, objectNames } from "../../schemas/names.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import type { IndexTask, SegmentRecord } from "../../schemas/segment.ts";
import { decodeFieldLog, ChecksumMismatch } from "../../engine/binlog.ts";
import { resolveIndexType } from "../../engine/index/index.ts";
import type { IndexWorkerPool } from "../../engine/index/pool.ts";
import { indexesToBuild } from "../datacoord/schedule.ts";
import type { BlobStore } from "../../runtime/blob.ts";
import type { MetaStore } from "../../runtime/meta.ts";

export interface BuildDeps {
  readonly meta: MetaStore;
  readonly blobs: BlobStore;
  readonly pool: IndexWorkerPool;
  readonly collection: (id: number) => Promise<CollectionRecord | undefined>;
}

export type BuildOutcome = "built" | "not-needed";

export const runIndexBuild = async (task: IndexTask, deps: BuildDeps): Promise<BuildOutcome> => {
  const rec = await deps.collection(task.collectionId);
  const def = rec?.indexes.find((i) => i.indexName === task.indexName && i.fieldName === task.fieldName);
  if (!rec || !def) return "not-needed";
  const segKey = metaKeys.segment(rec.id, task.segmentId);
  const seg = (await deps.meta.get<SegmentRecord>(segKey))?.value;
  if (!seg || !indexesToBuild(rec, seg).some((d) => d.indexName === def.indexName)) return "not-needed";
  const field = rec.schema.fields.find((f) => f.name === def.fieldName)!;
  const logName = seg.objects.fields[field.fieldId]!;
  const bytes = await deps.blobs.get(logName);
  if (!bytes) throw new ChecksumMismatch(logName, "object missing");
  const col = decodeFieldLog(bytes, { field, what: logName });
  if (!("kind" in col) || col.kind !== "vector") throw new ChecksumMismatch(logName, "not a vector log");
  const { type, params } = resolveIndexType(def);
  const index = await deps.pool.build(type, def.metricType, col.data, col.dim, params);
  const object = objectNames.index(rec.id, seg.partitionId, seg.segmentId, field.fieldId);
  await deps.blobs.put(object, index);
  await deps.meta.mutate<SegmentRecord>(segKey, (cur) => {
    if (!cur || cur.state === "Dropped") return undefined;
    const indexes = {
      ...cur.indexes,
      [def.fieldName]: {
        indexName: def.indexName,
        fieldName: def.fieldName,
        indexType: def.indexType,
        metricType: def.metricType,
        params: def.params,
        object,
        sizeBytes: index.length,
        builtAtMs: Date.now(),
      },
    };
    const next = { ...cur, indexes };
    return { ...next, state: indexesToBuild(rec, next).length === 0 ? "Indexed" : "Flushed" };
  });
  return "built";
};
