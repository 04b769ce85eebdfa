/**
 * Creates natsvec's streams and buckets if they are missing (idempotent, safe
 * to run from every process at start-up) and opens them.
 */
import { RetentionPolicy, StorageType } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { ObjectStore } from "@nats-io/obj";
import {
  BUCKET_LEASES,
  BUCKET_META,
  BUCKET_NODES,
  BUCKET_SEGMENTS,
  STREAM_TASKS,
  STREAM_WAL,
} from "../schemas/names.ts";
import type { NatsHandles, NatsvecConfig } from "./services.ts";
import { KvMetaStore, type MetaStore } from "./meta.ts";
import { JetStreamWal, type Wal } from "./wal.ts";

export interface Storage {
  readonly meta: MetaStore;
  readonly metaKv: KV;
  readonly nodes: KV;
  readonly leases: KV;
  readonly segments: ObjectStore;
  readonly wal: Wal;
  readonly walStream: string;
  readonly tasksStream: string;
}

const ensureStream = async (h: NatsHandles, name: string, subjects: string[], config: NatsvecConfig, workQueue: boolean) => {
  try {
    await h.jsm.streams.info(name);
  } catch {
    try {
      await h.jsm.streams.add({
        name,
        subjects,
        storage: StorageType.File,
        retention: workQueue ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
        num_replicas: config.replicas,
        max_msg_size: h.maxPayload,
        // Lets retried publishes with the same Nats-Msg-Id be stored once.
        duplicate_window: 120_000_000_000,
      });
    } catch (e) {
      // Another process created it between our info and add.
      if (!(e as Error).message?.includes("already in use")) throw e;
    }
  }
};

export const openStorage = async (h: NatsHandles, config: NatsvecConfig): Promise<Storage> => {
  const walStream = h.names.stream(STREAM_WAL);
  const tasksStream = h.names.stream(STREAM_TASKS);
  await ensureStream(h, walStream, [h.names.walAll()], config, false);
  await ensureStream(h, tasksStream, [h.names.tasksAll()], config, true);
  const metaKv = await h.kvm.create(h.names.bucket(BUCKET_META), { history: 5, replicas: config.replicas });
  const nodes = await h.kvm.create(h.names.bucket(BUCKET_NODES), {
    history: 1,
    replicas: config.replicas,
    ttl: config.heartbeatMs * 3,
  });
  const leases = await h.kvm.create(h.names.bucket(BUCKET_LEASES), {
    history: 1,
    replicas: config.replicas,
    ttl: config.leaseTtlMs,
  });
  const segments = await h.objm.create(h.names.bucket(BUCKET_SEGMENTS), { replicas: config.replicas });
  return {
    meta: new KvMetaStore(metaKv),
    metaKv,
    nodes,
    leases,
    segments,
    wal: new JetStreamWal(h.js, h.jsm, walStream),
    walStream,
    tasksStream,
  };
};
