/**
 * datanode: turns sealed growing segments into immutable segment files in the
 * Object Store (flush tasks) and merges segments (compaction tasks). Stateless:
 * takes tasks from the `data` lane of NATSVEC_TASKS; any number can run.
 */
import { Catalog } from "../../runtime/catalog.ts";
import { ObjectStoreBlobs } from "../../runtime/blob.ts";
import { consumeTasks } from "../../runtime/tasks.ts";
import { log } from "../../runtime/log.ts";
import type { NatsHandles, NatsvecConfig } from "../../runtime/services.ts";
import type { Storage } from "../../runtime/storage.ts";
import { runFlush } from "./flush.ts";
import { runCompact } from "./compact.ts";

export interface DatanodeHandle {
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

export const startDatanode = (h: NatsHandles, storage: Storage, config: NatsvecConfig): DatanodeHandle => {
  const catalog = new Catalog(storage.meta);
  const deps = {
    meta: storage.meta,
    blobs: new ObjectStoreBlobs(storage.segments),
    wal: storage.wal,
    walSubject: (c: number, s: number) => h.names.wal(c, s),
    collection: (id: number) => catalog.collectionById(id),
  };
  let worker: { stop(): Promise<void> } | undefined;
  const ready = (async () => {
    worker = await consumeTasks(h, storage, "data", `datanode ${config.nodeId}`, async (task) => {
      const started = Date.now();
      if (task.kind === "compact") {
        const outcome = await runCompact(task, deps);
        log.info(`datanode ${config.nodeId}: compaction of segments ${task.segmentIds.join(", ")} into ${task.targetSegmentId}: ${outcome} in ${Date.now() - started} ms`);
        return "ack";
      }
      if (task.kind !== "flush") return "ack";
      const outcome = await runFlush(task, deps);
      if (outcome === "not-ready") return "retry";
      log.info(
        `datanode ${config.nodeId}: flush ${task.collectionId}/${task.shard} WAL (${task.walFrom - 1}, ${task.walTo}] ${outcome} in ${Date.now() - started} ms`,
      );
      return "ack";
    });
  })();
  return {
    ready,
    async stop() {
      await ready.catch(() => undefined);
      await worker?.stop();
    },
  };
};
