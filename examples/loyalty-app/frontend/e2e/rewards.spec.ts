// Redeeming: the catalogue as a member sees it, a redemption, and the two ways one is refused (out of
// stock, too few points), also when another member or another tab got there first.
import { expect, LoyaltyPage, test } from "./fixtures.js";

test.describe("redeeming rewards", () => {
  test("redeeming a reward debits the balance, takes one from stock and books it", async ({ app, backend }) => {
    const member = await backend.memberWith(500, "Mia");
    const reward = await backend.reward(150, 5, "Cinema snack");
    await app.openAs(member);
    await expect(app.reward(reward.name)).toHaveText(`${reward.name} — 150 pts (5 left) Redeem`);
    await expect(app.reward(reward.name)).toHaveClass("available");

    await app.redeem(reward.name);

    await app.expectMessage(`Redeemed ${reward.name}.`);
    await expect(app.balance).toHaveText("350 pts · Silver · 650 to next tier");
    await expect(app.reward(reward.name)).toContainText("(4 left)");
    await expect(app.ledger.last()).toHaveText(new RegExp(`−150 pts redeemed '${reward.name}'$`));
    expect(await backend.redemptions(member.id)).toEqual([expect.objectContaining({ rewardId: reward.id })]);
  });

  test("a reward that costs more than the balance cannot be redeemed until enough is earned", async ({ app, backend }) => {
    const member = await backend.memberWith(90, "Noa");
    const reward = await backend.reward(100, 10, "Water bottle");
    await app.openAs(member);

    await expect(app.reward(reward.name)).toHaveClass("short");
    await expect(app.redeemButton(reward.name)).toBeDisabled();

    await app.earn(10, "store purchase");
    await app.expectMessage("Points added.");
    await expect(app.reward(reward.name)).toHaveClass("available");
    await app.redeem(reward.name);
    await app.expectMessage(`Redeemed ${reward.name}.`);
    await expect(app.balance).toHaveText(/^0 pts/);
  });

  test("a sold-out reward is shown out of stock and cannot be redeemed", async ({ app, backend }) => {
    const member = await backend.memberWith(10_000, "Oli");
    const reward = await backend.reward(100, 0, "Limited print");
    await app.openAs(member);

    await expect(app.reward(reward.name)).toContainText("(0 left)");
    await expect(app.reward(reward.name)).toHaveClass("out-of-stock");
    await expect(app.redeemButton(reward.name)).toBeDisabled();
    // The rest of the catalogue stays redeemable for this member.
    await expect(app.redeemButton("Free coffee")).toBeEnabled();
  });

  test("redeeming the last item sells the reward out", async ({ app, backend }) => {
    const member = await backend.memberWith(1_000, "Pia");
    const reward = await backend.reward(200, 1, "Signed poster");
    await app.openAs(member);
    await expect(app.reward(reward.name)).toContainText("(1 left)");

    await app.redeem(reward.name);

    await app.expectMessage(`Redeemed ${reward.name}.`);
    await expect(app.reward(reward.name)).toContainText("(0 left)");
    await expect(app.reward(reward.name)).toHaveClass("out-of-stock");
    await expect(app.redeemButton(reward.name)).toBeDisabled();
    await expect(app.balance).toHaveText(/^800 pts · Silver/);
  });

  test("the last item goes to the first of two members; the other is told it is sold out", async ({ app, backend, browser }) => {
    const [first, second] = await Promise.all([backend.memberWith(600, "Quinn"), backend.memberWith(600, "Rae")]);
    const reward = await backend.reward(300, 1, "Concert ticket");
    // The second member's browser: its own session, with the page loaded while one item was left.
    const other = await browser.newContext();
    try {
      const late = new LoyaltyPage(await other.newPage());
      await Promise.all([app.open(), late.open()]);
      await app.show(first);
      await late.show(second);
      await expect(late.redeemButton(reward.name)).toBeEnabled();

      await app.redeem(reward.name);
      await app.expectMessage(`Redeemed ${reward.name}.`);
      await late.redeem(reward.name);

      await late.expectMessage(`reward '${reward.name}' is out of stock`, { error: true });
      // The page now shows what the server has: sold out, and the points untouched.
      await expect(late.reward(reward.name)).toContainText("(0 left)");
      await expect(late.redeemButton(reward.name)).toBeDisabled();
      await expect(late.balance).toHaveText(/^600 pts/);
      expect(await backend.redemptions(second.id)).toEqual([]);
      expect(await backend.balance(first.id)).toBe(300);
    } finally {
      await other.close();
    }
  });

  test("points spent in another tab are not spent twice", async ({ app, backend, context }) => {
    const member = await backend.memberWith(150, "Sam");
    const reward = await backend.reward(100, 10, "Gift card");
    const secondTab = new LoyaltyPage(await context.newPage());
    await Promise.all([app.open(), secondTab.open()]);
    await app.show(member);
    await secondTab.show(member);

    await app.page.bringToFront();
    await app.redeem(reward.name);
    await app.expectMessage(`Redeemed ${reward.name}.`);
    await expect(app.balance).toHaveText(/^50 pts/);
    await secondTab.page.bringToFront();
    await expect(secondTab.redeemButton(reward.name)).toBeEnabled(); // that tab still shows 150 points
    await secondTab.redeem(reward.name);

    await secondTab.expectMessage(`not enough points: balance 50, '${reward.name}' costs 100`, { error: true });
    await expect(secondTab.balance).toHaveText(/^50 pts/);
    await expect(secondTab.reward(reward.name)).toHaveClass("short");
    await expect(secondTab.redeemButton(reward.name)).toBeDisabled();
    expect(await backend.redemptions(member.id)).toHaveLength(1);
  });

  test("without a member the catalogue is shown with no Redeem buttons", async ({ app, backend }) => {
    const reward = await backend.reward(50, 3, "Sticker pack");
    await app.open();
    await expect(app.reward(reward.name)).toHaveText(`${reward.name} — 50 pts (3 left) Redeem`);

    await app.lookUp(999_999_999);

    await app.expectMessage("user 999999999 not found", { error: true });
    await expect(app.reward(reward.name)).toHaveText(`${reward.name} — 50 pts (3 left)`);
    await expect(app.page.getByRole("button", { name: /^Redeem / })).toHaveCount(0);
    for (const name of ["Free coffee", "Cinema ticket", "Weekend getaway"]) {
      await expect(app.reward(name)).toBeVisible();
    }
  });
});
