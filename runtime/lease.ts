/**
 * Ownership leases in the `natsvec-leases` KV bucket (max-age = lease TTL).
 * A holder renews with compare-and-set on its own revision; if the renewal
 * fails (someone else holds it, or it expired and was taken), the lease is
 * lost and `onLost` fires so the holder stops acting as owner at once.
 */
import type { KV } from "@nats-io/kv";
import { log } from "./log.ts";

export interface LeaseValue {
  readonly holder: string;
  readonly acquiredAtMs: number;
}

export interface Lease {
  readonly key: string;
  readonly lost: boolean;
  release(): Promise<void>;
}

const enc = (v: LeaseValue) => new TextEncoder().encode(JSON.stringify(v));

export const readLease = async (kv: KV, key: string): Promise<LeaseValue | undefined> => {
  const e = await kv.get(key);
  if (!e || e.operation !== "PUT" || e.value.length === 0) return undefined;
  return JSON.parse(new TextDecoder().decode(e.value)) as LeaseValue;
};

/** Try once to take the lease; undefined if someone else holds it. */
export const tryAcquireLease = async (
  kv: KV,
  key: string,
  holder: string,
  ttlMs: number,
  onLost: () => void,
): Promise<Lease | undefined> => {
  const value: LeaseValue = { holder, acquiredAtMs: Date.now() };
  let revision: number;
  try {
    revision = await kv.create(key, enc(value));
  } catch {
    // Held. If by us (a restart with the same node id), take it over.
    const e = await kv.get(key);
    if (!e || e.operation !== "PUT") return undefined;
    const cur = JSON.parse(new TextDecoder().decode(e.value)) as LeaseValue;
    if (cur.holder !== holder) return undefined;
    try {
      revision = await kv.update(key, enc(value), e.revision);
    } catch {
      return undefined;
    }
  }
  let lost = false;
  let released = false;
  const loseIt = (why: string) => {
    if (lost || released) return;
    lost = true;
    clearInterval(timer);
    log.warn(`lease ${key} lost by ${holder}: ${why}`);
    onLost();
  };
  const timer = setInterval(async () => {
    try {
      revision = await kv.update(key, enc(value), revision);
    } catch (e) {
      loseIt((e as Error).message);
    }
  }, Math.max(50, Math.floor(ttlMs / 3)));
  timer.unref();
  return {
    key,
    get lost() {
      return lost;
    },
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      if (!lost) await kv.delete(key, { previousSeq: revision }).catch(() => undefined);
    },
  };
};
