/**
 * Branded ids: a CollectionId cannot be passed where a PartitionId is meant.
 * Collection/partition ids are small integers from rootcoord's allocators;
 * timestamps are hybrid TSO values (physical_ms << 18 | logical) as bigint.
 */
import { Brand } from "effect";

export type CollectionId = number & Brand.Brand<"CollectionId">;
export const CollectionId = Brand.nominal<CollectionId>();
export type PartitionId = number & Brand.Brand<"PartitionId">;
export const PartitionId = Brand.nominal<PartitionId>();
export type ShardId = number & Brand.Brand<"ShardId">;
export const ShardId = Brand.nominal<ShardId>();
export type SegmentId = number & Brand.Brand<"SegmentId">;
export const SegmentId = Brand.nominal<SegmentId>();
export type Timestamp = bigint & Brand.Brand<"Timestamp">;
export const Timestamp = Brand.nominal<Timestamp>();

export const LOGICAL_BITS = 18n;
export const composeTs = (physicalMs: number, logical: number): Timestamp =>
  Timestamp((BigInt(physicalMs) << LOGICAL_BITS) | BigInt(logical));
export const physicalMsOf = (ts: bigint): number => Number(ts >> LOGICAL_BITS);
