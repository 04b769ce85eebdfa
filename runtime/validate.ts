/**
 * Decode a request body with an Effect Schema and turn a failure into the
 * public error: a missing key is MissingParameter (1802), anything else
 * InvalidParameter (1100), each naming the path of the offending value.
 */
import { Either, ParseResult, Schema } from "effect";
import { InvalidParameter, MissingParameter } from "../schemas/errors.ts";

export const decodeRequest = <A, I>(schema: Schema.Schema<A, I, never>, body: unknown): A => {
  const result = Schema.decodeUnknownEither(schema, { errors: "first" })(body);
  if (Either.isRight(result)) return result.right;
  const issues = ParseResult.ArrayFormatter.formatErrorSync(result.left);
  const first = issues[0];
  const path = first?.path.length ? first.path.join(".") : "body";
  if (first?._tag === "Missing") throw new MissingParameter({ message: `missing required parameter '${path}'` });
  throw new InvalidParameter({ message: `invalid parameter '${path}': ${first?.message ?? "wrong type"}` });
};
