// The loyalty store: what the API needs from its data, and an in-memory implementation of it.
//
// Production keeps the data in Postgres (src/prisma-store.ts, through Prisma's client). The in-memory
// store applies the same rules (src/domain.ts) to rows of the same Prisma model types; it serves the unit
// tests and `DATA_STORE=memory`, so the API runs and is tested without any service.
import type { PointsLedger, Redemption, Reward, User } from "./generated/prisma/client.js";
import { LedgerKind } from "./generated/prisma/enums.js";
import {
  checkEarn,
  checkNewReward,
  checkNewUser,
  DEMO_MEMBER,
  DEMO_REWARDS,
  outOfStock,
  tooFewPoints,
  type NewReward,
  type NewUser,
} from "./domain.js";
import { ConflictError, NotFoundError } from "./errors.js";

export type { NewReward, NewUser } from "./domain.js";

export interface UserSummary {
  user: User;
  balance: number;
}

/** Points a member earned in all (EARN entries only): what the leaderboard ranks. */
export interface EarnedTotal {
  userId: number;
  earned: number;
}

export interface LoyaltyStore {
  createUser(input: NewUser): Promise<User>;
  getUser(id: number): Promise<User>;
  /** The users of these ids that exist (any order). */
  usersById(ids: readonly number[]): Promise<User[]>;
  listUsers(): Promise<UserSummary[]>;
  balance(userId: number): Promise<number>;
  entries(userId: number): Promise<PointsLedger[]>;
  earn(userId: number, points: number, reason: string): Promise<PointsLedger>;
  /** The member's lifetime earned points. */
  earned(userId: number): Promise<number>;
  /** Every member's lifetime earned points (members who earned nothing are left out). */
  earnedTotals(): Promise<EarnedTotal[]>;
  createReward(input: NewReward): Promise<Reward>;
  listRewards(): Promise<Reward[]>;
  /** Spend points on a reward: checks stock and balance, then writes the redemption and a REDEEM entry. */
  redeem(userId: number, rewardId: number): Promise<Redemption>;
  redemptionsOf(userId: number): Promise<Redemption[]>;
  /** Resolves when the store can serve this release; rejects with the reason otherwise. */
  check(): Promise<void>;
  close(): Promise<void>;
}

export class MemoryStore implements LoyaltyStore {
  private readonly users = new Map<number, User>();
  private readonly ledger: PointsLedger[] = [];
  private readonly rewards = new Map<number, Reward>();
  private readonly redemptions: Redemption[] = [];
  private nextId = { user: 1, ledger: 1, reward: 1, redemption: 1 };

  constructor(private readonly now: () => Date = () => new Date()) {}

  async createUser(input: NewUser): Promise<User> {
    const { email, name } = checkNewUser(input);
    for (const existing of this.users.values()) {
      if (existing.email === email) throw new ConflictError(`a user with email '${email}' exists`);
    }
    const user: User = { id: this.nextId.user++, email, name, createdAt: this.now() };
    this.users.set(user.id, user);
    return user;
  }

  async getUser(id: number): Promise<User> {
    return this.user(id);
  }

  async usersById(ids: readonly number[]): Promise<User[]> {
    return ids.flatMap((id) => this.users.get(id) ?? []);
  }

  async listUsers(): Promise<UserSummary[]> {
    return [...this.users.values()].map((user) => ({ user, balance: this.sum(user.id) }));
  }

  async balance(userId: number): Promise<number> {
    this.user(userId);
    return this.sum(userId);
  }

  async entries(userId: number): Promise<PointsLedger[]> {
    this.user(userId);
    return this.ledger.filter((e) => e.userId === userId);
  }

  async earn(userId: number, points: number, reason: string): Promise<PointsLedger> {
    this.user(userId);
    return this.append(userId, points, LedgerKind.EARN, checkEarn(points, reason));
  }

  async earned(userId: number): Promise<number> {
    this.user(userId);
    return this.ledger.filter((e) => e.userId === userId && e.kind === LedgerKind.EARN).reduce((s, e) => s + e.delta, 0);
  }

  async earnedTotals(): Promise<EarnedTotal[]> {
    const totals = new Map<number, number>();
    for (const e of this.ledger) {
      if (e.kind === LedgerKind.EARN) totals.set(e.userId, (totals.get(e.userId) ?? 0) + e.delta);
    }
    return [...totals].map(([userId, earned]) => ({ userId, earned }));
  }

  async createReward(input: NewReward): Promise<Reward> {
    const { name, cost, stock } = checkNewReward(input);
    for (const existing of this.rewards.values()) {
      if (existing.name === name) throw new ConflictError(`a reward named '${name}' exists`);
    }
    const reward: Reward = { id: this.nextId.reward++, name, cost, stock, active: true };
    this.rewards.set(reward.id, reward);
    return reward;
  }

  async listRewards(): Promise<Reward[]> {
    return [...this.rewards.values()].filter((r) => r.active);
  }

  async redeem(userId: number, rewardId: number): Promise<Redemption> {
    this.user(userId);
    const reward = this.rewards.get(rewardId);
    if (reward === undefined || !reward.active) throw new NotFoundError(`reward ${rewardId} not found`);
    if (reward.stock <= 0) throw new ConflictError(outOfStock(reward.name));
    const balance = this.sum(userId);
    if (balance < reward.cost) throw new ConflictError(tooFewPoints(balance, reward.name, reward.cost));
    reward.stock -= 1;
    this.append(userId, -reward.cost, LedgerKind.REDEEM, `redeemed '${reward.name}'`);
    const redemption: Redemption = { id: this.nextId.redemption++, userId, rewardId, cost: reward.cost, createdAt: this.now() };
    this.redemptions.push(redemption);
    return redemption;
  }

  async redemptionsOf(userId: number): Promise<Redemption[]> {
    this.user(userId);
    return this.redemptions.filter((r) => r.userId === userId);
  }

  async check(): Promise<void> {}

  async close(): Promise<void> {}

  private user(id: number): User {
    const user = this.users.get(id);
    if (user === undefined) throw new NotFoundError(`user ${id} not found`);
    return user;
  }

  private sum(userId: number): number {
    return this.ledger.filter((e) => e.userId === userId).reduce((sum, e) => sum + e.delta, 0);
  }

  private append(userId: number, delta: number, kind: LedgerKind, reason: string): PointsLedger {
    const entry: PointsLedger = { id: this.nextId.ledger++, userId, delta, kind, reason, createdAt: this.now() };
    this.ledger.push(entry);
    return entry;
  }
}

/** An in-memory store with the demo catalogue and member that the demo-data migration gives a database. */
export async function seededStore(): Promise<MemoryStore> {
  const store = new MemoryStore();
  for (const reward of DEMO_REWARDS) await store.createReward(reward);
  const demo = await store.createUser(DEMO_MEMBER);
  await store.earn(demo.id, DEMO_MEMBER.points, DEMO_MEMBER.reason);
  return store;
}
