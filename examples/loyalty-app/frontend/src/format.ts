// Pure presentation logic (no DOM), unit-tested with node --test.
import type { Health, LedgerEntry, Reward } from "./types.js";

export type Tier = "Bronze" | "Silver" | "Gold";

const TIERS: ReadonlyArray<[number, Tier]> = [
  [1000, "Gold"],
  [300, "Silver"],
  [0, "Bronze"],
];

export function tierFor(balance: number): Tier {
  for (const [min, tier] of TIERS) if (balance >= min) return tier;
  return "Bronze";
}

/** Points to the next tier, or null at the top. */
export function pointsToNextTier(balance: number): number | null {
  const higher = TIERS.filter(([min]) => min > balance).map(([min]) => min);
  return higher.length === 0 ? null : Math.min(...higher) - balance;
}

export function formatPoints(points: number): string {
  const sign = points > 0 ? "+" : points < 0 ? "−" : "";
  return `${sign}${Math.abs(points).toLocaleString("en-US")} pts`;
}

export function formatBalance(balance: number): string {
  return `${balance.toLocaleString("en-US")} pts`;
}

export function describeEntry(entry: LedgerEntry): string {
  const day = entry.createdAt.slice(0, 10);
  return `${day} ${formatPoints(entry.delta)} ${entry.reason}`;
}

export type Availability = "available" | "short" | "out-of-stock";

export function availability(reward: Reward, balance: number | null): Availability {
  if (reward.stock <= 0) return "out-of-stock";
  if (balance !== null && balance < reward.cost) return "short";
  return "available";
}

export function describeHealth(health: Health): string {
  const commit = health.commit === "unknown" ? "unknown" : health.commit.slice(0, 7);
  return `API ${health.status} · v${health.version} · ${commit}`;
}
