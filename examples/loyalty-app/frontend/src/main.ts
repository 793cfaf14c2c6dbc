// The page: API status, a member's balance and ledger, sign-up, the reward catalogue and the leaderboard.
import "./style.css";
import { Api, ApiError, apiBase } from "./api.js";
import { availability, describeEntry, describeHealth, formatBalance, pointsToNextTier, tierFor } from "./format.js";
import type { Reward } from "./types.js";

let api = new Api(import.meta.env.VITE_API_BASE ?? "");

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`#${id} is missing from index.html`);
  return el;
}

function element(tag: string, text: string, className?: string): HTMLElement {
  const el = document.createElement(tag);
  el.textContent = text;
  if (className !== undefined) el.className = className;
  return el;
}

let currentUser: number | null = null;
let currentBalance: number | null = null;
let rewards: Reward[] = [];

function say(text: string, isError = false): void {
  const message = $("message");
  message.textContent = text;
  message.className = isError ? "error" : "";
}

function problem(err: unknown): string {
  return err instanceof ApiError ? err.message : "the API cannot be reached";
}

function renderRewards(): void {
  const list = $("rewards");
  list.replaceChildren(
    ...rewards.map((reward) => {
      const state = availability(reward, currentBalance);
      const item = element("li", `${reward.name} — ${formatBalance(reward.cost)} (${reward.stock} left)`, state);
      item.dataset.testid = "reward";
      item.dataset.rewardId = String(reward.id);
      if (currentUser !== null) {
        const button = element("button", "Redeem") as HTMLButtonElement;
        button.setAttribute("aria-label", `Redeem ${reward.name}`);
        button.disabled = state !== "available";
        button.addEventListener("click", () => void redeem(reward));
        item.append(" ", button);
      }
      return item;
    }),
  );
}

async function showLeaders(): Promise<void> {
  try {
    const leaders = await api.leaderboard(5);
    $("leaderboard").replaceChildren(
      ...leaders.map((l) => {
        const item = element("li", `${l.name} — ${formatBalance(l.points)} earned`);
        item.dataset.testid = "leader";
        item.dataset.userId = String(l.userId);
        return item;
      }),
    );
  } catch {
    $("leaderboard").replaceChildren(element("li", "the leaderboard is unavailable", "error"));
  }
}

async function showMember(userId: number): Promise<void> {
  try {
    const [{ user }, { balance, entries }] = await Promise.all([api.member(userId), api.ledger(userId)]);
    currentUser = user.id;
    currentBalance = balance;
    const next = pointsToNextTier(balance);
    $("member").dataset.userId = String(user.id);
    $("member").replaceChildren(
      element("p", `${user.name} <${user.email}>`),
      element("p", `${formatBalance(balance)} · ${tierFor(balance)}${next === null ? "" : ` · ${next} to next tier`}`, "balance"),
    );
    $("ledger").replaceChildren(...entries.map((e) => element("li", describeEntry(e))));
    $("earn").hidden = false;
    renderRewards();
  } catch (err) {
    currentUser = null;
    currentBalance = null;
    delete $("member").dataset.userId;
    $("member").replaceChildren();
    $("ledger").replaceChildren();
    $("earn").hidden = true;
    renderRewards();
    say(problem(err), true);
  }
}

async function redeem(reward: Reward): Promise<void> {
  const userId = currentUser;
  if (userId === null) return;
  say(`Redeeming ${reward.name}…`);
  try {
    await api.redeem(userId, reward.id);
    rewards = await api.rewards();
    say(`Redeemed ${reward.name}.`);
    await showMember(userId);
  } catch (err) {
    // Refused (sold out, too few points) or failed: say why, and show what the server has now, since this
    // page's catalogue and balance may be older than another member's (or another tab's) redemption.
    try {
      rewards = await api.rewards();
    } catch {
      // the API cannot be reached: keep the catalogue the page has
    }
    await showMember(userId);
    say(problem(err), true);
  }
}

$("lookup").addEventListener("submit", (event) => {
  event.preventDefault();
  const data = new FormData(event.target as HTMLFormElement);
  say("");
  void showMember(Number(data.get("userId")));
});

$("earn").addEventListener("submit", (event) => {
  event.preventDefault();
  if (currentUser === null) return;
  const data = new FormData(event.target as HTMLFormElement);
  const userId = currentUser;
  say("Adding points…");
  api
    .earn(userId, Number(data.get("points")), String(data.get("reason")))
    .then(() => Promise.all([showMember(userId), showLeaders()]))
    .then(() => say("Points added."))
    .catch((err: unknown) => say(problem(err), true));
});

$("signup").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target as HTMLFormElement;
  const data = new FormData(form);
  say("Signing up…");
  api
    .signUp(String(data.get("email")), String(data.get("name")))
    .then(async ({ user }) => {
      form.reset();
      ($("lookup").querySelector("input[name=userId]") as HTMLInputElement).value = String(user.id);
      await showMember(user.id);
      say(`Welcome, ${user.name}: you are member ${user.id}.`);
    })
    .catch((err: unknown) => say(problem(err), true));
});

async function start(): Promise<void> {
  api = new Api(await apiBase(fetch, import.meta.env.VITE_API_BASE ?? ""));
  try {
    $("status").textContent = describeHealth(await api.health());
    rewards = await api.rewards();
    renderRewards();
    await Promise.all([showMember(1), showLeaders()]);
    document.body.dataset.app = "ready";
  } catch (err) {
    $("status").textContent = `API unavailable: ${problem(err)}`;
    $("status").className = "status error";
    document.body.dataset.app = "offline";
  }
}

void start();
