import { describe, expect, it } from "vitest";
import { ERROR_BY_CODE, ERROR_CLASSES, errorFromCode, toApiError } from "./errors.ts";

describe("public error codes", () => {
  // Every error class has its own code: the table built at load time has one entry per class.
  it("are unique", () => {
    const codes = ERROR_CLASSES.map((C) => new C({ message: "" }).code);
    expect(new Set(codes).size).toBe(codes.length);
    expect(ERROR_BY_CODE.size).toBe(ERROR_CLASSES.length);
  });

  // A wire envelope maps back to the same class; unknown codes and non-API errors become 65535.
  it("round-trip through the wire code", () => {
    for (const C of ERROR_CLASSES) {
      const e = new C({ message: "m" });
      const back = errorFromCode(e.code, "m");
      expect(back).toBeInstanceOf(C);
      expect(back.retriable).toBe(e.retriable);
    }
    expect(errorFromCode(4242, "x").code).toBe(65535);
    expect(toApiError(new TypeError("boom"))).toMatchObject({ code: 65535, message: "TypeError: boom" });
  });

  // Only transient conditions are retriable: bad input never is.
  it("mark only transient errors retriable", () => {
    const retriable = ERROR_CLASSES.filter((C) => new C({ message: "" }).retriable).map((C) => new C({ message: "" })._tag);
    expect(retriable.sort()).toEqual(["ConsistencyTimeout", "ShardUnavailable", "Unavailable"]);
  });
});
