/**
 * The timestamp oracle: hybrid timestamps `physical_ms << 18 | logical`,
 * strictly increasing. A high-water mark (physical ms) is persisted in KV
 * ahead of use, so after a restart — even with a clock that went backwards —
 * every new timestamp is above every one handed out before.
 */
import { composeTs, type Timestamp } from "../../schemas/ids.ts";
import { metaKeys } from "../../schemas/names.ts";
import type { MetaStore } from "../../runtime/meta.ts";

const MAX_LOGICAL = 1 << 18;
/** How far ahead of the clock the persisted high-water mark runs. */
export const TSO_WINDOW_MS = 3_000;

export class Tso {
  private physical = 0;
  private logical = 0;
  private highWater = 0;
  private lock: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly meta: MetaStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** Load the persisted mark; the next timestamp is past it. */
  async start(): Promise<void> {
    const hw = await this.meta.get<number>(metaKeys.tsoHighWater());
    this.physical = Math.max(this.now(), (hw?.value ?? 0) + 1);
    this.logical = 0;
    await this.persist(this.physical + TSO_WINDOW_MS);
  }

  private async persist(mark: number) {
    await this.meta.mutate<number>(metaKeys.tsoHighWater(), (cur) => Math.max(cur ?? 0, mark));
    this.highWater = mark;
  }

  /** `count` consecutive timestamps; returns the first. */
  allocate(count = 1): Promise<Timestamp> {
    if (!Number.isInteger(count) || count < 1 || count >= MAX_LOGICAL) throw new Error(`bad timestamp count ${count}`);
    const run = this.lock.then(async () => {
      const now = this.now();
      if (now > this.physical) {
        this.physical = now;
        this.logical = 0;
      }
      if (this.logical + count > MAX_LOGICAL) {
        this.physical += 1;
        this.logical = 0;
      }
      if (this.physical >= this.highWater) await this.persist(this.physical + TSO_WINDOW_MS);
      else if (this.physical > this.highWater - TSO_WINDOW_MS / 2) void this.persist(this.physical + TSO_WINDOW_MS).catch(() => undefined);
      const ts = composeTs(this.physical, this.logical);
      this.logical += count;
      return ts;
    });
    this.lock = run.catch(() => undefined);
    return run;
  }
}
