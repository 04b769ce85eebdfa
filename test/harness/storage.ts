/**
 * A real nats-server plus an open connection and natsvec's streams and buckets, for tests of
 * the runtime's storage interfaces. Closed in afterAll, even when assertions throw.
 */
import { afterAll, beforeAll } from "vitest";
import { defaultConfig, openNats, type NatsHandles } from "../../runtime/services.ts";
import { openStorage, type Storage } from "../../runtime/storage.ts";
import { useNatsServer, type TestNats } from "./nats.ts";

export interface TestStorage {
  nats: TestNats;
  h: NatsHandles;
  storage: Storage;
}

export function useStorage(): { get(): TestStorage } {
  const nats = useNatsServer();
  let t: TestStorage | undefined;
  beforeAll(async () => {
    const config = defaultConfig({ natsUrl: nats.get().url });
    const h = await openNats(config);
    t = { nats: nats.get(), h, storage: await openStorage(h, config) };
  });
  afterAll(async () => {
    await t?.h.nc.close();
  });
  return {
    get() {
      if (!t) throw new Error("storage not open (useStorage must be called at the top of a file)");
      return t;
    },
  };
}
