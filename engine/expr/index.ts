/**
 * Milvus boolean filter expressions: parse + type-check once, bind to a data
 * source, evaluate per row. See README.md for the grammar and null semantics.
 */
import type { CollectionSchema } from "../../schemas/collection.ts";
import { bindPredicate, check } from "./compile.ts";
import { FilterError } from "./lexer.ts";
import { parseFilter } from "./parser.ts";

export { FilterError };

export interface ColumnSource {
  /** Getter for a declared field's value at a row; returns null for null/absent. For the dynamic field name "$meta" returns the row's JSON object (or null). */
  column(fieldName: string): (row: number) => unknown;
}

export interface CompiledFilter {
  readonly text: string;
  /** Declared field names the filter reads (including "$meta" if it reads dynamic keys). */
  readonly fields: readonly string[];
  /** Produce a predicate over row numbers for one data source. */
  bind(source: ColumnSource): (row: number) => boolean;
}

/** Parse and type-check `text` against `schema`, substituting `{name}` templates from `params`. Throws FilterError. */
export function compileFilter(text: string, schema: CollectionSchema, params?: Record<string, unknown>): CompiledFilter {
  const { ir, fields } = check(parseFilter(text), schema, params);
  return {
    text,
    fields,
    bind: (source) => bindPredicate(ir, (name) => source.column(name)),
  };
}

/** Empty / whitespace-only filter means "all rows": returns undefined. */
export function compileOptionalFilter(
  text: string | undefined,
  schema: CollectionSchema,
  params?: Record<string, unknown>,
): CompiledFilter | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  return compileFilter(text, schema, params);
}
