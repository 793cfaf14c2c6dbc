// Earning: a member's points, balance, tier and ledger as the page shows them, and what it refuses.
import { expect, test } from "./fixtures.js";

test.describe("earning points", () => {
  test("earning points updates the balance, the tier line and the ledger", async ({ app, backend }) => {
    const member = await backend.signUp("Gus");
    await app.openAs(member);
    await expect(app.balance).toHaveText("0 pts · Bronze · 300 to next tier");

    await app.earn(120, "coffee order");

    await app.expectMessage("Points added.");
    await expect(app.balance).toHaveText("120 pts · Bronze · 180 to next tier");
    await expect(app.ledger).toHaveCount(1);
    await expect(app.ledger.last()).toHaveText(/^\d{4}-\d{2}-\d{2} \+120 pts coffee order$/);
    expect(await backend.balance(member.id)).toBe(120);
  });

  test("crossing 300 points makes a Silver member and 1,000 a Gold one", async ({ app, backend }) => {
    const member = await backend.signUp("Hana");
    await app.openAs(member);

    await app.earn(250, "first order");
    await expect(app.balance).toHaveText("250 pts · Bronze · 50 to next tier");
    await app.earn(100, "second order");
    await expect(app.balance).toHaveText("350 pts · Silver · 650 to next tier");
    await app.earn(700, "birthday bonus");
    await expect(app.balance).toHaveText("1,050 pts · Gold");
  });

  test("the ledger lists every earn, oldest first, and the balance is their sum", async ({ app, backend }) => {
    const member = await backend.signUp("Ivo");
    await app.openAs(member);

    for (const [points, reason] of [[40, "newsletter"], [75, "online order"], [10, "review"]] as const) {
      await app.earn(points, reason);
      await app.expectMessage("Points added.");
    }
    await expect(app.ledger).toHaveText([/\+40 pts newsletter$/, /\+75 pts online order$/, /\+10 pts review$/]);
    await expect(app.balance).toHaveText(/^125 pts · Bronze/);
  });

  test("more points than one entry allows are refused and nothing is booked", async ({ app, backend }) => {
    const member = await backend.memberWith(30, "Jo");
    await app.openAs(member);

    await app.earn(1_000_001, "typo");

    await app.expectMessage("points must be an integer between 1 and 1000000", { error: true });
    await expect(app.balance).toHaveText(/^30 pts/);
    await expect(app.ledger).toHaveCount(1);
    expect(await backend.ledger(member.id)).toHaveLength(1);
  });

  test("a reason of only spaces is refused", async ({ app, backend }) => {
    const member = await backend.signUp("Kai");
    await app.openAs(member);

    await app.earn(20, "   ");

    await app.expectMessage("reason must be 1-200 characters", { error: true });
    await expect(app.balance).toHaveText(/^0 pts/);
    expect(await backend.ledger(member.id)).toEqual([]);
  });

  test("the browser refuses zero and fractional points before anything is sent", async ({ app, backend }) => {
    const member = await backend.signUp("Lea");
    await app.openAs(member);
    const posts: string[] = [];
    app.page.on("request", (request) => {
      if (request.method() === "POST") posts.push(request.url());
    });
    const points = app.earnForm.getByLabel("Points");

    await app.earn(0, "nothing");
    expect(await points.evaluate((el: HTMLInputElement) => el.validity.rangeUnderflow)).toBe(true);
    await app.earn("2.5", "half");
    expect(await points.evaluate((el: HTMLInputElement) => el.validity.stepMismatch)).toBe(true);

    expect(posts).toEqual([]);
    await expect(app.balance).toHaveText(/^0 pts/);
  });

  test("looking up a member who does not exist says so and offers no earning", async ({ app }) => {
    await app.open();
    await expect(app.earnForm).toBeVisible(); // the demo member is shown first

    await app.lookUp(987_654_321);

    await app.expectMessage("user 987654321 not found", { error: true });
    await expect(app.earnForm).toBeHidden();
    await expect(app.member).toBeEmpty();
    await expect(app.ledger).toHaveCount(0);
  });
});
