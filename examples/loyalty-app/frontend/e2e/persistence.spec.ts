// What a member did is kept by the server (Postgres), not by the page: it is there after a reload and in
// another browser.
import { expect, LoyaltyPage, test, unique } from "./fixtures.js";

test.describe("persistence", () => {
  test("a member's balance and ledger survive a reload of the page", async ({ app }) => {
    const u = unique();
    await app.open();
    await app.signUp(`xia.${u}@example.com`, `Xia ${u}`);
    await app.expectMessage(`Welcome, Xia ${u}:`);
    const id = Number(await app.member.getAttribute("data-user-id"));
    await app.earn(180, "first order");
    await app.expectMessage("Points added.");
    await app.earn(140, "second order");
    await expect(app.balance).toHaveText("320 pts · Silver · 680 to next tier");

    await app.reload();
    await expect(app.member).toHaveAttribute("data-user-id", "1"); // a fresh page starts at the demo member
    await app.show({ id, email: `xia.${u}@example.com`, name: `Xia ${u}` });

    await expect(app.balance).toHaveText("320 pts · Silver · 680 to next tier");
    await expect(app.ledger).toHaveText([/\+180 pts first order$/, /\+140 pts second order$/]);
  });

  test("another browser sees the same member, and what was redeemed in one", async ({ app, backend, browser }) => {
    const member = await backend.memberWith(400, "Yan");
    const reward = await backend.reward(250, 4, "Museum pass");
    await app.openAs(member);
    await app.redeem(reward.name);
    await app.expectMessage(`Redeemed ${reward.name}.`);

    const elsewhere = await browser.newContext();
    try {
      const there = new LoyaltyPage(await elsewhere.newPage());
      await there.open();
      await there.show(member);
      await expect(there.balance).toHaveText("150 pts · Bronze · 150 to next tier");
      await expect(there.ledger.last()).toHaveText(new RegExp(`−250 pts redeemed '${reward.name}'$`));
      await expect(there.reward(reward.name)).toContainText("(3 left)");
    } finally {
      await elsewhere.close();
    }
  });
});
