// The generated Prisma client (npm run db:generate) is present, loads, and matches the schema.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { LedgerKind } from "../src/generated/prisma/enums.js";

const schema = readFileSync(new URL("../../prisma/schema.prisma", import.meta.url), "utf8");

describe("generated Prisma client", () => {
  it("loads with its runtime (@prisma/client) and exports PrismaClient and the enums", async () => {
    const client = await import("../src/generated/prisma/client.js");
    assert.equal(typeof client.PrismaClient, "function");
    assert.deepEqual(client.LedgerKind, LedgerKind);
  });

  it("has every model and enum value of the schema", async () => {
    const models = [...schema.matchAll(/^model (\w+) \{/gm)].map((m) => m[1]);
    assert.deepEqual(models, ["User", "PointsLedger", "Reward", "Redemption"]);
    const { Prisma } = await import("../src/generated/prisma/client.js");
    assert.deepEqual(Object.values(Prisma.ModelName), models);
    assert.deepEqual(Object.keys(LedgerKind), ["EARN", "REDEEM", "ADJUST"]);
  });
});
