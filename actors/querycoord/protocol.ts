/**
 * querycoord's protocol: verbs on `<root>.querycoord.any.<verb>` (queue group
 * `querycoord`; only the lease holder subscribes).
 */
import type { LoadStateName } from "./balance.ts";

export const QUERYCOORD_VERBS = {
  loadState: "loadState",
} as const;

export interface LoadStateRequest {
  collectionId: number;
}
export interface LoadStateReply {
  state: LoadStateName;
  /** 0-100: rows of serving segments over rows of every ready segment. */
  progress: number;
  servingRows: number;
  totalRows: number;
}
