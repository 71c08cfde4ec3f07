/**
 * What a user of the published package meets first: every entry point exports the base error class, codes
 * are typed unions, bad arguments get typed errors instead of TypeErrors, an inexact number token is
 * refused, and the source maps point at files the package ships.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import * as client from "../../src/client/index.js";
import * as postgres from "../../src/guard/postgres/index.js";
import * as sqlite from "../../src/guard/sqlite/index.js";
import * as lockd from "../../src/lockd/index.js";
import { FencelockError } from "../../src/shared/errors.js";
import * as storage from "../../src/storage/index.js";
import * as testkit from "../../src/testkit/index.js";

const root = resolve(dirname(new URL(import.meta.url).pathname), "../../..");

describe("the public API", () => {
  it("exports the one FencelockError from every entry point", () => {
    for (const part of [client, storage, lockd, testkit, postgres, sqlite]) {
      assert.equal(part.FencelockError, FencelockError);
    }
    assert.ok(new client.LockTimeoutError("x", 1) instanceof client.FencelockError);
    assert.ok(new postgres.StaleTokenError(1n, 2n, "f") instanceof storage.FencelockError);
  });

  it("types each part's codes as a union (checked by the compiler)", () => {
    const code: client.ClientErrorCode = new client.LockTimeoutError("x", 1).code;
    // @ts-expect-error a code no client error has
    const wrong: client.ClientErrorCode = "NO_SUCH_CODE";
    const storageCode: storage.StorageErrorCode = new storage.StorageTimeoutError("t").code;
    const guardCode: postgres.GuardErrorCode = new postgres.GuardArgumentError("x").code;
    assert.deepEqual(
      [code, wrong, storageCode, guardCode],
      ["LOCK_TIMEOUT", "NO_SUCH_CODE", "STORAGE_TIMEOUT", "INVALID_ARGUMENT"],
    );
  });

  it("refuses a malformed storage URL or endpoint list with a typed error", () => {
    for (const url of ["localhost:8080", "", "https://127.0.0.1:8080", undefined]) {
      assert.throws(
        () => new storage.StorageClient({ url: url as string }),
        (err: unknown) => err instanceof storage.StorageArgumentError && err.code === "INVALID_ARGUMENT",
        String(url),
      );
    }
    for (const endpoints of ["127.0.0.1:2379", [2379], ["127.0.0.1"]]) {
      assert.throws(
        () => client.connect({ endpoints: endpoints as string[] }),
        client.InvalidArgumentError,
        JSON.stringify(endpoints),
      );
    }
  });

  it("refuses a number token that JavaScript has already rounded, before sending anything", async () => {
    const s = new storage.StorageClient({ url: "http://127.0.0.1:9", timeoutMs: 1000 });
    try {
      await assert.rejects(
        s.write("k", "v", { token: Number(4703569812595502727n) as unknown as bigint }),
        storage.StorageArgumentError,
      );
      await assert.rejects(s.read("k", { token: "5" as unknown as bigint }), storage.StorageArgumentError);
      // A safe integer passes the check (and then fails to connect: nothing listens on port 9).
      await assert.rejects(
        s.write("k", "v", { token: 5 as unknown as bigint }),
        storage.StorageUnavailableError,
      );
    } finally {
      s.close();
    }
  });

  it("ships every file its source maps point to", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { files: string[] };
    const maps: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith(".js.map")) maps.push(path);
      }
    };
    walk(join(root, "dist/src"));
    assert.ok(maps.length > 0, "the build writes source maps");
    for (const map of maps) {
      for (const source of (JSON.parse(readFileSync(map, "utf8")) as { sources: string[] }).sources) {
        const file = resolve(dirname(map), source);
        const inPackage = relative(root, file);
        assert.ok(existsSync(file), `${map} points to missing ${source}`);
        assert.ok(
          pkg.files.some((f) => inPackage === f || inPackage.startsWith(`${f}/`)),
          `${inPackage} (from ${relative(root, map)}) is not in package.json "files"`,
        );
      }
    }
  });
});
