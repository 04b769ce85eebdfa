/**
 * proxy: the public API. Stateless; any number run in the queue group
 * `proxy` on `<root>.api.v2.>`, and NATS spreads requests over them.
 */
import { checkName } from "../../schemas/collectionCreate.ts";
import { InvalidParameter } from "../../schemas/errors.ts";
import { RequestClient } from "../../runtime/client.ts";
import { serveEndpoints, type ServedEndpoints } from "../../runtime/host.ts";
import { log } from "../../runtime/log.ts";
import type { NatsHandles, NatsvecConfig } from "../../runtime/services.ts";
import type { Storage } from "../../runtime/storage.ts";
import { ProxyContext } from "./context.ts";
import { ddlHandlers, type Handler } from "./ddl.ts";
import { entityHandlers } from "./entities.ts";
import { indexHandlers } from "./indexes.ts";
import { MetaCache } from "./metaCache.ts";

export const PROXY_HANDLERS: Readonly<Record<string, Handler>> = { ...ddlHandlers, ...entityHandlers, ...indexHandlers };

const NAME_FIELDS = {
  dbName: "database",
  newDbName: "database",
  collectionName: "collection",
  newCollectionName: "collection",
  partitionName: "partition",
  aliasName: "alias",
} as const;

/**
 * Names become meta KV keys: one outside the naming rule ('a b', '*', '>', '')
 * would make the KV client throw (a 65535) instead of a clear 1100, so every
 * name in a request is checked before any handler looks it up. An empty
 * dbName means the default database, as in Milvus. Non-string values are
 * left to the handler's schema (1100 / 1802 naming the path).
 */
export const checkRequestNames = (body: unknown): void => {
  if (body === null || typeof body !== "object") return;
  const b = body as Record<string, unknown>;
  for (const k of ["dbName", "newDbName"]) if (b[k] === "") delete b[k];
  for (const [k, what] of Object.entries(NAME_FIELDS)) if (typeof b[k] === "string") checkName(what, b[k]);
  if (Array.isArray(b.partitionNames)) for (const p of b.partitionNames) if (typeof p === "string") checkName("partition", p);
};

export interface ProxyHandle {
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

export const startProxy = (h: NatsHandles, storage: Storage, config: NatsvecConfig): ProxyHandle => {
  const client = new RequestClient(h.nc, config.requestTimeoutMs, config.localDelivery);
  const cache = new MetaCache(storage.meta);
  const ctx = new ProxyContext(h, config, client, cache);
  let served: ServedEndpoints | undefined;
  const ready = (async () => {
    await cache.start();
    served = serveEndpoints(
      h,
      [
        {
          subject: h.names.apiWildcard(),
          queue: "proxy",
          handle: async (body, rctx) => {
            const route = h.names.parseApi(rctx.subject);
            const handler = route && PROXY_HANDLERS[`${route.category}.${route.action}`];
            if (!handler) {
              throw new InvalidParameter({
                message: `unknown endpoint '${rctx.subject}'; endpoints are ${h.names.api("<category>", "<action>")}, e.g. ${h.names.api("collections", "list")}`,
              });
            }
            checkRequestNames(body);
            return handler(body, ctx, rctx.deadlineMs);
          },
        },
      ],
      "proxy",
      { wire: true },
    );
    await served.ready;
    log.info(`proxy ${config.nodeId}: serving ${h.names.apiWildcard()}`);
  })();
  return {
    ready,
    async stop() {
      await served?.stop();
      cache.stop();
      await client.close();
    },
  };
};
