-- Demo data: the reward catalogue and one demo member with a welcome bonus (src/domain.ts has the
-- same values for the in-memory store). A data migration, so it is applied once per database and a
-- reward that is later sold out or retired stays that way.
INSERT INTO "Reward" ("name", "cost", "stock") VALUES
    ('Free coffee', 100, 50),
    ('Cinema ticket', 450, 20),
    ('Weekend getaway', 5000, 2)
ON CONFLICT ("name") DO NOTHING;

INSERT INTO "User" ("email", "name") VALUES ('demo@example.com', 'Demo Member')
ON CONFLICT ("email") DO NOTHING;

INSERT INTO "PointsLedger" ("userId", "delta", "kind", "reason")
SELECT "id", 250, 'EARN', 'welcome bonus' FROM "User"
WHERE "email" = 'demo@example.com'
  AND NOT EXISTS (SELECT 1 FROM "PointsLedger" l JOIN "User" u ON u."id" = l."userId" WHERE u."email" = 'demo@example.com');
