/** Test helpers for engine unit tests: schema literals and a seeded RNG. */
import type { CollectionSchema, DataType, FieldSchema } from "../schemas/collection.ts";

export type FieldSpec = Partial<Omit<FieldSchema, "name" | "dataType">>;

/** A FieldSchema literal with defaults (fieldId is assigned by `makeSchema`). */
export const fld = (name: string, dataType: DataType, extra: FieldSpec = {}): FieldSchema => ({
  fieldId: 0,
  name,
  dataType,
  isPrimary: false,
  autoId: false,
  description: "",
  nullable: false,
  isDynamic: false,
  ...extra,
});

/** A CollectionSchema literal; field ids 100, 101, ... in order. */
export const makeSchema = (fields: FieldSchema[], enableDynamicField = false): CollectionSchema => ({
  fields: fields.map((f, i) => ({ ...f, fieldId: 100 + i })),
  enableDynamicField,
  description: "",
});

/** mulberry32: deterministic uniform [0, 1). */
export const rng = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};
