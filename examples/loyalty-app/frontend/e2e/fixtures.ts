// The suite's fixtures: `app`, the page as a member sees it (a page object over the UI), and `backend`,
// the API used only to arrange a test (members, points, rewards) and to check what the server stored.
// Every test makes its own members and rewards with unique names, so tests run in parallel on one
// database and a second run against the same stack passes too.
import { randomUUID } from "node:crypto";
import { expect, test as base, type APIRequestContext, type Locator, type Page } from "@playwright/test";
import { discoverApi } from "./env.js";

export { expect };

export interface Member {
  id: number;
  email: string;
  name: string;
}

export interface Reward {
  id: number;
  name: string;
  cost: number;
  stock: number;
}

/** The most one ledger entry may add (backend/src/domain.ts). */
export const MAX_POINTS_PER_ENTRY = 1_000_000;

/** A suffix no other test, worker or run uses. */
export function unique(): string {
  return randomUUID().slice(0, 8);
}

async function json<T>(response: Awaited<ReturnType<APIRequestContext["get"]>>): Promise<T> {
  if (!response.ok()) {
    throw new Error(`${response.url()} answered ${response.status()}: ${await response.text()}`);
  }
  return (await response.json()) as T;
}

/** The backend's API, as a test's arrange step and its server-side checks use it. */
export class Backend {
  constructor(
    readonly url: string,
    private readonly request: APIRequestContext,
  ) {}

  async health(): Promise<{ status: string; version: string; commit: string }> {
    return json(await this.request.get("/api/health"));
  }

  async signUp(name = `Member ${unique()}`): Promise<Member> {
    const email = `${name.toLowerCase().replace(/[^a-z0-9]+/g, ".")}.${unique()}@example.com`;
    return (await json<{ user: Member }>(await this.request.post("/api/users", { data: { email, name } }))).user;
  }

  /** A new member holding `points` (booked in entries of at most MAX_POINTS_PER_ENTRY). */
  async memberWith(points: number, name?: string): Promise<Member> {
    const member = await this.signUp(name);
    await this.earn(member.id, points);
    return member;
  }

  async earn(userId: number, points: number, reason = "store purchase"): Promise<number> {
    let balance = 0;
    for (let left = points; left > 0; left -= MAX_POINTS_PER_ENTRY) {
      const data = { points: Math.min(left, MAX_POINTS_PER_ENTRY), reason };
      balance = (await json<{ balance: number }>(await this.request.post(`/api/users/${userId}/points`, { data }))).balance;
    }
    return balance;
  }

  async balance(userId: number): Promise<number> {
    return (await json<{ balance: number }>(await this.request.get(`/api/users/${userId}`))).balance;
  }

  async ledger(userId: number): Promise<Array<{ delta: number; reason: string }>> {
    return (await json<{ entries: Array<{ delta: number; reason: string }> }>(await this.request.get(`/api/users/${userId}/points`)))
      .entries;
  }

  async redemptions(userId: number): Promise<Array<{ rewardId: number }>> {
    return (await json<{ redemptions: Array<{ rewardId: number }> }>(await this.request.get(`/api/users/${userId}/redemptions`)))
      .redemptions;
  }

  async users(): Promise<Member[]> {
    return (await json<{ users: Array<{ user: Member }> }>(await this.request.get("/api/users"))).users.map((u) => u.user);
  }

  /** A reward of the catalogue's with a name of its own. */
  async reward(cost: number, stock: number, kind = "Tote bag"): Promise<Reward> {
    const data = { name: `${kind} ${unique()}`, cost, stock };
    return (await json<{ reward: Reward }>(await this.request.post("/api/rewards", { data }))).reward;
  }

  async rewards(): Promise<Reward[]> {
    return (await json<{ rewards: Reward[] }>(await this.request.get("/api/rewards"))).rewards;
  }

  /** The most points anyone has earned (0 on an empty board). */
  async topScore(): Promise<number> {
    const { leaders } = await json<{ leaders: Array<{ points: number }> }>(await this.request.get("/api/leaderboard?limit=1"));
    return leaders[0]?.points ?? 0;
  }
}

/** The page, as a member uses it. */
export class LoyaltyPage {
  readonly status: Locator;
  readonly message: Locator;
  readonly member: Locator;
  readonly balance: Locator;
  readonly ledger: Locator;
  readonly earnForm: Locator;
  readonly signUpForm: Locator;
  readonly rewards: Locator;
  readonly leaders: Locator;

  constructor(readonly page: Page) {
    this.status = page.locator("#status");
    this.message = page.getByRole("status");
    this.member = page.locator("#member");
    this.balance = this.member.locator(".balance");
    this.ledger = page.locator("#ledger > li");
    this.earnForm = page.locator("form#earn");
    this.signUpForm = page.locator("form#signup");
    this.rewards = page.getByTestId("reward");
    this.leaders = page.getByTestId("leader");
  }

  /** Opens the page and waits until its first load (health, catalogue, demo member, board) is done. */
  async open(): Promise<void> {
    await this.page.goto("/");
    await expect(this.page.locator("body")).toHaveAttribute("data-app", /^(ready|offline)$/, { timeout: 20_000 });
  }

  /** Asks for member `id` (the page answers with the member or an error message). */
  async lookUp(id: number | string): Promise<void> {
    await this.page.getByLabel("Member id").fill(String(id));
    await this.page.getByRole("button", { name: "Show" }).click();
  }

  /** Opens the page and shows `member`, as a member who looked themselves up. */
  async openAs(member: Member): Promise<void> {
    await this.open();
    await this.show(member);
  }

  /** Reloads the page and waits for its first load again. */
  async reload(): Promise<void> {
    await this.page.reload();
    await expect(this.page.locator("body")).toHaveAttribute("data-app", "ready", { timeout: 20_000 });
  }

  /** Looks up a member that exists and waits until the page shows them. */
  async show(member: Member): Promise<void> {
    await this.lookUp(member.id);
    await expect(this.member).toHaveAttribute("data-user-id", String(member.id));
    await expect(this.member).toContainText(member.name);
  }

  async signUp(email: string, name: string): Promise<void> {
    await this.signUpForm.getByLabel("Email").fill(email);
    await this.signUpForm.getByLabel("Name").fill(name);
    await this.signUpForm.getByRole("button", { name: "Sign up" }).click();
  }

  async earn(points: number | string, reason: string): Promise<void> {
    await this.earnForm.getByLabel("Points").fill(String(points));
    await this.earnForm.getByLabel("Reason").fill(reason);
    await this.earnForm.getByRole("button", { name: "Add points" }).click();
  }

  reward(name: string): Locator {
    return this.rewards.filter({ hasText: name });
  }

  redeemButton(name: string): Locator {
    return this.page.getByRole("button", { name: `Redeem ${name}`, exact: true });
  }

  async redeem(name: string): Promise<void> {
    await this.redeemButton(name).click();
  }

  /** Waits for the message line to say `text` (a string matches as a substring). */
  async expectMessage(text: string | RegExp, { error = false } = {}): Promise<void> {
    await expect(this.message).toHaveText(typeof text === "string" ? new RegExp(escape(text)) : text);
    if (error) await expect(this.message).toHaveClass("error");
    else await expect(this.message).not.toHaveClass("error");
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export const test = base.extend<{ app: LoyaltyPage }, { backend: Backend }>({
  backend: [
    async ({ playwright }, use) => {
      const url = await discoverApi();
      // A fresh connection per request: the backend closes idle keep-alive sockets after 5 s, and a
      // request sent on one just as it closes fails with ECONNRESET.
      const request = await playwright.request.newContext({ baseURL: url, extraHTTPHeaders: { connection: "close" } });
      await use(new Backend(url, request));
      await request.dispose();
    },
    { scope: "worker" },
  ],
  app: async ({ page }, use) => {
    await use(new LoyaltyPage(page));
  },
});
