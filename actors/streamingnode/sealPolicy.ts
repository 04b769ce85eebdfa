/**
 * When a shard seals its growing segments (and asks for a flush): enough rows,
 * enough bytes, or rows that have sat idle long enough. Pure; tested beside.
 */
export interface SealPolicyConfig {
  /** Seal when the shard's growing rows reach this many. */
  readonly maxRows: number;
  /** Seal when the growing segments use this much memory. */
  readonly maxBytes: number;
  /** Seal growing rows untouched for this long. */
  readonly idleMs: number;
}

export const DEFAULT_SEAL_POLICY: SealPolicyConfig = {
  maxRows: 200_000,
  maxBytes: 128 * 1024 * 1024,
  idleMs: 60_000,
};

export interface GrowingState {
  readonly rows: number;
  readonly bytes: number;
  readonly lastWriteMs: number;
}

export type SealReason = "rows" | "bytes" | "idle" | undefined;

export const sealReason = (p: SealPolicyConfig, g: GrowingState, nowMs: number): SealReason => {
  if (g.rows === 0) return undefined;
  if (g.rows >= p.maxRows) return "rows";
  if (g.bytes >= p.maxBytes) return "bytes";
  if (nowMs - g.lastWriteMs >= p.idleMs) return "idle";
  return undefined;
};
