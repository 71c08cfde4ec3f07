/**
 * `Symbol.asyncDispose` exists from Node 20.4 on; earlier Node 20 releases lack it. Node's own name for
 * it is `Symbol.for("nodejs.asyncDispose")`, so `await using` and Node agree either way. Imported for its
 * effect by the modules whose classes define `[Symbol.asyncDispose]`, before those classes exist.
 */
const symbols = Symbol as unknown as { asyncDispose?: symbol };
symbols.asyncDispose ??= Symbol.for("nodejs.asyncDispose");
