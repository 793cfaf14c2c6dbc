// Joining: a visitor signs up on the page and becomes the member it shows; bad sign-ups are refused.
import { expect, test, unique } from "./fixtures.js";

test.describe("sign-up", () => {
  test("a visitor signs up and becomes the member shown, with no points yet", async ({ app, backend }) => {
    const u = unique();
    const email = `ann.${u}@example.com`;
    await app.open();
    await app.signUp(email, `Ann ${u}`);

    await app.expectMessage(new RegExp(`^Welcome, Ann ${u}: you are member \\d+\\.$`));
    const id = Number((await app.message.textContent())?.match(/member (\d+)/)?.[1]);
    await expect(app.member).toHaveAttribute("data-user-id", String(id));
    await expect(app.member).toContainText(`Ann ${u} <${email}>`);
    await expect(app.balance).toHaveText("0 pts · Bronze · 300 to next tier");
    await expect(app.ledger).toHaveCount(0);
    await expect(app.page.getByLabel("Member id")).toHaveValue(String(id));
    await expect(app.signUpForm.getByLabel("Email")).toHaveValue("");
    await expect(app.earnForm).toBeVisible();
    // With no points, every reward of the catalogue is out of reach.
    await expect(app.redeemButton("Free coffee")).toBeDisabled();
    await expect(app.reward("Free coffee")).toHaveClass(/short|out-of-stock/);

    expect((await backend.users()).filter((m) => m.email === email)).toEqual([
      expect.objectContaining({ id, email, name: `Ann ${u}` }),
    ]);
  });

  test("an email that is already a member's is refused, whatever its case", async ({ app, backend }) => {
    const taken = await backend.signUp("Bea");
    await app.open();
    await app.signUp(taken.email.toUpperCase(), "Bea Again");

    await app.expectMessage(`a user with email '${taken.email}' exists`, { error: true });
    // Nothing changed: the form keeps what was typed, the page still shows the demo member.
    await expect(app.signUpForm.getByLabel("Name")).toHaveValue("Bea Again");
    await expect(app.member).toHaveAttribute("data-user-id", "1");
    expect((await backend.users()).filter((m) => m.email === taken.email)).toHaveLength(1);
  });

  test("an address without a domain the server accepts is refused", async ({ app, backend }) => {
    const email = `cem.${unique()}@localhost`; // valid for the browser's type=email, not for the API
    await app.open();
    await app.signUp(email, "Cem");

    await app.expectMessage(`invalid email '${email}'`, { error: true });
    expect((await backend.users()).some((m) => m.email === email)).toBe(false);
  });

  test("a name of only spaces is refused", async ({ app, backend }) => {
    const email = `dee.${unique()}@example.com`;
    await app.open();
    await app.signUp(email, "    ");

    await app.expectMessage("name must be 1-100 characters", { error: true });
    expect((await backend.users()).some((m) => m.email === email)).toBe(false);
  });

  test("the browser asks for missing or malformed fields before anything is sent", async ({ app }) => {
    await app.open();
    const posts: string[] = [];
    app.page.on("request", (request) => {
      if (request.method() === "POST") posts.push(request.url());
    });
    const email = app.signUpForm.getByLabel("Email");
    const name = app.signUpForm.getByLabel("Name");

    await app.signUpForm.getByRole("button", { name: "Sign up" }).click();
    expect(await email.evaluate((el: HTMLInputElement) => el.validity.valueMissing)).toBe(true);

    await app.signUp("not-an-email", "Eve");
    expect(await email.evaluate((el: HTMLInputElement) => el.validity.typeMismatch)).toBe(true);

    await email.fill(`eve.${unique()}@example.com`);
    await name.fill("");
    await app.signUpForm.getByRole("button", { name: "Sign up" }).click();
    expect(await name.evaluate((el: HTMLInputElement) => el.validity.valueMissing)).toBe(true);

    await expect(app.message).toHaveText("");
    expect(posts).toEqual([]);
  });

  test("a new member's email is stored lower-cased and the name trimmed", async ({ app, backend }) => {
    const u = unique();
    await app.open();
    await app.signUp(`Finn.${u}@Example.COM`, `   Finn ${u}   `);

    await app.expectMessage(`Welcome, Finn ${u}:`);
    await expect(app.member).toContainText(`Finn ${u} <finn.${u}@example.com>`);
    expect((await backend.users()).filter((m) => m.email === `finn.${u}@example.com`)).toEqual([
      expect.objectContaining({ name: `Finn ${u}` }),
    ]);
  });
});
