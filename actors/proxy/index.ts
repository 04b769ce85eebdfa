/**
 * proxy: the public API. Stateless; any number run in the queue group
 * `proxy` on `<root>.api.v2.>`, and NATS spreads requests over them.
 */
import { InvalidParameter } from "../../schemas/errors.ts";
import { RequestClient } from "../../runtime/client.ts";
import { serveEndpoints, type ServedEndpoints } from "../../runtime/host.ts";
import { log } from "../../runtime/log.ts";
import type { NatsHandles, NatsvecConfig } from "../../runtime/services.ts";
import type { Storage } from "../../runtime/storage.ts";
import { ProxyContext } from "./context.ts";
import { ddlHandlers, type Handler } from "./ddl.ts";
import { entityHandlers } from "./entities.ts";
import { MetaCache } from "./metaCache.ts";

export const PROXY_HANDLERS: Readonly<Record<string, Handler>> = { ...ddlHandlers, ...entityHandlers };

export interface ProxyHandle {
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

export const startProxy = (h: NatsHandles, storage: Storage, config: NatsvecConfig): ProxyHandle => {
  const client = new RequestClient(h.nc, config.requestTimeoutMs);
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
            return handler(body, ctx, rctx.deadlineMs);
          },
        },
      ],
      "proxy",
    );
    log.info(`proxy ${config.nodeId}: serving ${h.names.apiWildcard()}`);
  })();
  return {
    ready,
    async stop() {
      await served?.stop();
      cache.stop();
      client.close();
    },
  };
};
