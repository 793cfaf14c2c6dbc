// The leaderboard (a Redis sorted set of the points each member has earned in all): who tops it, how an
// earn reorders it, and that spending points does not lower a member's place. Each test first reads
// the current top score and puts its members well above it (by more than any other test's member ever
// earns), so other tests, running beside them, and earlier runs never get in the way; the tests of this
// file run one after another, in one worker.
import { expect, test } from "./fixtures.js";

test.describe.configure({ mode: "default" });

/** More than any member of the other spec files earns. */
const ABOVE_OTHERS = 100_000;

async function clearTop(backend: { topScore(): Promise<number> }): Promise<number> {
  return (await backend.topScore()) + ABOVE_OTHERS;
}

function leaderText(name: string, points: number): string {
  return `${name} — ${points.toLocaleString("en-US")} pts earned`;
}

test.describe("leaderboard", () => {
  test("a member who earns more than anyone tops the board", async ({ app, backend }) => {
    const top = await clearTop(backend);
    const member = await backend.memberWith(top + 100, "Tia");
    await app.open();
    await expect(app.leaders.first()).toHaveText(leaderText(member.name, top + 100));
    await app.show(member);

    await app.earn(250, "anniversary bonus");

    await app.expectMessage("Points added.");
    await expect(app.leaders.first()).toHaveText(leaderText(member.name, top + 350));
    await expect(app.leaders.first()).toHaveAttribute("data-user-id", String(member.id));
  });

  test("overtaking another member reorders the board", async ({ app, backend }) => {
    const top = await clearTop(backend);
    const leader = await backend.memberWith(top + 300, "Uma");
    const chaser = await backend.memberWith(top + 200, "Vic");
    await app.open();
    await expect(app.leaders.nth(0)).toHaveText(leaderText(leader.name, top + 300));
    await expect(app.leaders.nth(1)).toHaveText(leaderText(chaser.name, top + 200));
    await app.show(chaser);

    await app.earn(150, "referral");

    await expect(app.leaders.nth(0)).toHaveText(leaderText(chaser.name, top + 350));
    await expect(app.leaders.nth(1)).toHaveText(leaderText(leader.name, top + 300));
  });

  test("redeeming spends the balance but keeps the member's place on the board", async ({ app, backend }) => {
    const top = await clearTop(backend);
    const member = await backend.memberWith(top + 500, "Wen");
    const reward = await backend.reward(400, 5, "Spa voucher");
    await app.openAs(member);

    await app.redeem(reward.name);
    await app.expectMessage(`Redeemed ${reward.name}.`);
    await expect(app.balance).toHaveText(new RegExp(`^${(top + 100).toLocaleString("en-US")} pts`));

    await app.reload();
    await expect(app.leaders.first()).toHaveText(leaderText(member.name, top + 500));
  });
});
