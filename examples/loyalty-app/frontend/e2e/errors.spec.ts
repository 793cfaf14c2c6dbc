// What the page says when the API is down, unhealthy or failing: the browser's requests to the API are
// cut or answered with errors (Playwright's request routing), the rest of the stack keeps running for
// the tests beside this one.
import { expect, test } from "./fixtures.js";

test.describe("API errors", () => {
  test("the status line shows the API's health, version and commit", async ({ app, backend }) => {
    const health = await backend.health();
    await app.open();
    const commit = health.commit === "unknown" ? "unknown" : health.commit.slice(0, 7);
    await expect(app.status).toHaveText(`API ok · v${health.version} · ${commit}`);
    await expect(app.status).not.toHaveClass(/error/);
  });

  test("with the API unreachable the page says so and offers nothing to click", async ({ app, backend }) => {
    await app.page.route(`${backend.url}/api/**`, (route) => route.abort("connectionrefused"));
    await app.open();

    await expect(app.page.locator("body")).toHaveAttribute("data-app", "offline");
    await expect(app.status).toHaveText("API unavailable: the API cannot be reached");
    await expect(app.status).toHaveClass(/error/);
    await expect(app.rewards).toHaveCount(0);
    await expect(app.earnForm).toBeHidden();
  });

  test("an unhealthy API (503) is reported when the page loads", async ({ app, backend }) => {
    await app.page.route(`${backend.url}/api/health`, (route) =>
      route.fulfill({
        status: 503,
        contentType: "application/json",
        body: JSON.stringify({ status: "unhealthy", version: "1", commit: "c", checks: { database: "connection refused", redis: "ok" } }),
      }),
    );
    await app.open();

    await expect(app.status).toHaveText("API unavailable: HTTP 503");
    await expect(app.page.locator("body")).toHaveAttribute("data-app", "offline");
  });

  test("a connection lost mid-session is shown, and the next try goes through", async ({ app, backend }) => {
    const member = await backend.memberWith(60, "Zed");
    await app.openAs(member);
    const cut = `${backend.url}/api/users/${member.id}/points`;
    await app.page.route(cut, (route) => (route.request().method() === "POST" ? route.abort("connectionreset") : route.continue()));

    await app.earn(40, "order 1001");
    await app.expectMessage("the API cannot be reached", { error: true });
    await expect(app.balance).toHaveText(/^60 pts/);
    expect(await backend.balance(member.id)).toBe(60);

    await app.page.unroute(cut);
    await app.earn(40, "order 1001");
    await app.expectMessage("Points added.");
    await expect(app.balance).toHaveText(/^100 pts/);
  });

  test("a server error on a redemption is shown with the server's message, and nothing is spent", async ({ app, backend }) => {
    const member = await backend.memberWith(300, "Abe");
    const reward = await backend.reward(120, 5, "Coffee beans");
    await app.openAs(member);
    await app.page.route(`${backend.url}/api/users/${member.id}/redemptions`, (route) =>
      route.fulfill({ status: 500, contentType: "application/json", body: JSON.stringify({ error: "internal error" }) }),
    );

    await app.redeem(reward.name);

    await app.expectMessage("internal error", { error: true });
    await expect(app.balance).toHaveText(/^300 pts/);
    await expect(app.reward(reward.name)).toContainText("(5 left)");
    expect(await backend.redemptions(member.id)).toEqual([]);
  });

  test("an unavailable leaderboard leaves the rest of the page working", async ({ app, backend }) => {
    const member = await backend.signUp("Bo");
    await app.page.route(`${backend.url}/api/leaderboard**`, (route) =>
      route.fulfill({ status: 500, contentType: "application/json", body: JSON.stringify({ error: "internal error" }) }),
    );
    await app.open();

    await expect(app.page.locator("#leaderboard > li")).toHaveText(["the leaderboard is unavailable"]);
    await expect(app.page.locator("body")).toHaveAttribute("data-app", "ready");
    await app.show(member);
    await app.earn(25, "survey");
    await app.expectMessage("Points added.");
    await expect(app.balance).toHaveText(/^25 pts/);
  });

  test("the page calls the API that its config.json names, from the browser", async ({ app, backend }) => {
    const calls: string[] = [];
    app.page.on("request", (request) => {
      if (new URL(request.url()).pathname.startsWith("/api/")) calls.push(request.url());
    });
    await app.open();

    expect(calls.length).toBeGreaterThanOrEqual(4); // health, rewards, member, ledger, leaderboard
    expect(calls.every((url) => url.startsWith(`${backend.url}/api/`))).toBe(true);
  });
});
