/**
 * Composition of one natsvec process: which roles run here. Every role gets
 * the same services (config, NATS connection, storage) through Effect's
 * context, and is started and stopped inside one scope: closing the scope
 * stops the roles in reverse order and drains the NATS connection last.
 */
import { Context, Effect, Layer } from "effect";
import type { Role } from "../schemas/names.ts";
import { Config, ConfigLive, Nats, NatsLive, openNats, type NatsvecConfig } from "../runtime/services.ts";
import { openStorage, type Storage } from "../runtime/storage.ts";
import { registerNode } from "../runtime/registry.ts";
import { log } from "../runtime/log.ts";
import { startRootcoord } from "../actors/rootcoord/index.ts";
import { startStreamingNode } from "../actors/streamingnode/index.ts";
import { startProxy } from "../actors/proxy/index.ts";
import { startDatacoord } from "../actors/datacoord/index.ts";
import { startDatanode } from "../actors/datanode/index.ts";
import { startIndexnode } from "../actors/indexnode/index.ts";
import { startQuerycoord } from "../actors/querycoord/index.ts";
import { startQueryNode } from "../actors/querynode/index.ts";

/** In start order: coordinators first (the TSO above all), then workers, the proxy last. */
export const RUNNABLE_ROLES = ["rootcoord", "datacoord", "querycoord", "streamingnode", "datanode", "indexnode", "querynode", "proxy"] as const satisfies readonly Role[];
export type RunnableRole = (typeof RUNNABLE_ROLES)[number];

export class StorageService extends Context.Tag("natsvec/Storage")<StorageService, Storage>() {}

const StorageLive = Layer.effect(
  StorageService,
  Effect.gen(function* () {
    const h = yield* Nats;
    const config = yield* Config;
    return yield* Effect.promise(() => openStorage(h, config));
  }),
);

interface RoleHandle {
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

const starters: Record<RunnableRole, (h: Nats["Type"], s: Storage, c: NatsvecConfig) => RoleHandle> = {
  rootcoord: startRootcoord,
  streamingnode: startStreamingNode,
  proxy: startProxy,
  datacoord: startDatacoord,
  datanode: startDatanode,
  indexnode: startIndexnode,
  querycoord: startQuerycoord,
  querynode: (h, s, c) => startQueryNode(h, s, c),
};

/** Start one role for the lifetime of the scope. */
/**
 * Roles that move segment files (tens of MB) get a NATS connection of their own, so a bulk
 * transfer cannot hold up requests, time ticks and heartbeats queued on the shared connection.
 */
const BULK_ROLES: ReadonlySet<RunnableRole> = new Set(["datanode", "indexnode", "querynode"] as RunnableRole[]);

const role = (name: RunnableRole) =>
  Effect.gen(function* () {
    const config = yield* Config;
    let h = yield* Nats;
    let storage = yield* StorageService;
    if (BULK_ROLES.has(name)) {
      h = yield* Effect.acquireRelease(
        Effect.promise(() => openNats(config, `natsvec-${name}`)),
        (c) => Effect.promise(() => c.nc.drain().catch(() => undefined)),
      );
      const bulk = h;
      storage = yield* Effect.promise(() => openStorage(bulk, config));
    }
    const [hh, ss] = [h, storage];
    const handle = yield* Effect.acquireRelease(
      Effect.sync(() => starters[name](hh, ss, config)),
      (r) => Effect.promise(() => r.stop().catch((e) => log.error(`stopping ${name} failed`, e))),
    );
    return handle;
  });

/** All chosen roles, started in a dependency-friendly order; waits until each is ready. */
export const rolesProgram = (roles: readonly RunnableRole[]) =>
  Effect.gen(function* () {
    const h = yield* Nats;
    const storage = yield* StorageService;
    const config = yield* Config;
    const ordered = RUNNABLE_ROLES.filter((r) => roles.includes(r));
    const reg = registerNode(h, storage, config, ordered);
    yield* Effect.addFinalizer(() => Effect.promise(() => reg.stop()));
    // rootcoord first: streamingnodes need the TSO to recover and serve.
    const handles: RoleHandle[] = [];
    for (const r of ordered) handles.push(yield* role(r));
    yield* Effect.promise(() => Promise.all(handles.map((x) => x.ready)));
  });

export const layerFor = (config: NatsvecConfig) => {
  const base = Layer.provideMerge(NatsLive, ConfigLive(config));
  return Layer.provideMerge(StorageLive, base);
};

export interface RunningNode {
  stop(): Promise<void>;
}

/**
 * Start roles in this process; resolves once they are all ready. `stop()`
 * closes the scope (roles stop, connection drains).
 */
export const startNode = async (config: NatsvecConfig, roles: readonly RunnableRole[]): Promise<RunningNode> => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let readyResolve!: () => void;
  let readyReject!: (e: unknown) => void;
  const ready = new Promise<void>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  const program = Effect.scoped(
    Effect.gen(function* () {
      yield* rolesProgram(roles);
      readyResolve();
      yield* Effect.promise(() => released);
    }),
  ).pipe(Effect.provide(layerFor(config)));
  const done = Effect.runPromise(program).catch((e) => {
    readyReject(e);
    throw e;
  });
  await ready;
  return {
    async stop() {
      release();
      await done.catch(() => undefined);
    },
  };
};
