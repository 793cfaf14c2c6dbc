// In-memory loyalty store. Rows have exactly the shapes of the Prisma models (generated types), so a
// database-backed store can replace this one without touching the API layer.
import type { PointsLedger, Redemption, Reward, User } from "./generated/prisma/client.js";
import { LedgerKind } from "./generated/prisma/enums.js";
import { ConflictError, NotFoundError, ValidationError } from "./errors.js";

export interface UserSummary {
  user: User;
  balance: number;
}

export interface NewUser {
  email: string;
  name: string;
}

export interface NewReward {
  name: string;
  cost: number;
  stock: number;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const MAX_POINTS_PER_ENTRY = 1_000_000;

export class LoyaltyStore {
  private readonly users = new Map<number, User>();
  private readonly ledger: PointsLedger[] = [];
  private readonly rewards = new Map<number, Reward>();
  private readonly redemptions: Redemption[] = [];
  private nextId = { user: 1, ledger: 1, reward: 1, redemption: 1 };

  constructor(private readonly now: () => Date = () => new Date()) {}

  createUser(input: NewUser): User {
    const email = input.email.trim().toLowerCase();
    const name = input.name.trim();
    if (!EMAIL.test(email)) throw new ValidationError(`invalid email '${input.email}'`);
    if (name === "" || name.length > 100) throw new ValidationError("name must be 1-100 characters");
    for (const existing of this.users.values()) {
      if (existing.email === email) throw new ConflictError(`a user with email '${email}' exists`);
    }
    const user: User = { id: this.nextId.user++, email, name, createdAt: this.now() };
    this.users.set(user.id, user);
    return user;
  }

  getUser(id: number): User {
    const user = this.users.get(id);
    if (user === undefined) throw new NotFoundError(`user ${id} not found`);
    return user;
  }

  listUsers(): UserSummary[] {
    return [...this.users.values()].map((user) => ({ user, balance: this.balance(user.id) }));
  }

  balance(userId: number): number {
    this.getUser(userId);
    return this.ledger.filter((e) => e.userId === userId).reduce((sum, e) => sum + e.delta, 0);
  }

  entries(userId: number): PointsLedger[] {
    this.getUser(userId);
    return this.ledger.filter((e) => e.userId === userId);
  }

  earn(userId: number, points: number, reason: string): PointsLedger {
    this.getUser(userId);
    if (!Number.isInteger(points) || points <= 0 || points > MAX_POINTS_PER_ENTRY) {
      throw new ValidationError(`points must be an integer between 1 and ${MAX_POINTS_PER_ENTRY}`);
    }
    const why = reason.trim();
    if (why === "" || why.length > 200) throw new ValidationError("reason must be 1-200 characters");
    return this.append(userId, points, LedgerKind.EARN, why);
  }

  createReward(input: NewReward): Reward {
    const name = input.name.trim();
    if (name === "") throw new ValidationError("reward name must not be empty");
    if (!Number.isInteger(input.cost) || input.cost <= 0) throw new ValidationError("cost must be a positive integer");
    if (!Number.isInteger(input.stock) || input.stock < 0) throw new ValidationError("stock must be an integer >= 0");
    for (const existing of this.rewards.values()) {
      if (existing.name === name) throw new ConflictError(`a reward named '${name}' exists`);
    }
    const reward: Reward = { id: this.nextId.reward++, name, cost: input.cost, stock: input.stock, active: true };
    this.rewards.set(reward.id, reward);
    return reward;
  }

  listRewards(): Reward[] {
    return [...this.rewards.values()].filter((r) => r.active);
  }

  /** Spend points on a reward: checks stock and balance, then writes the redemption and a REDEEM entry. */
  redeem(userId: number, rewardId: number): Redemption {
    this.getUser(userId);
    const reward = this.rewards.get(rewardId);
    if (reward === undefined || !reward.active) throw new NotFoundError(`reward ${rewardId} not found`);
    if (reward.stock <= 0) throw new ConflictError(`reward '${reward.name}' is out of stock`);
    const balance = this.balance(userId);
    if (balance < reward.cost) {
      throw new ConflictError(`not enough points: balance ${balance}, '${reward.name}' costs ${reward.cost}`);
    }
    reward.stock -= 1;
    this.append(userId, -reward.cost, LedgerKind.REDEEM, `redeemed '${reward.name}'`);
    const redemption: Redemption = {
      id: this.nextId.redemption++,
      userId,
      rewardId,
      cost: reward.cost,
      createdAt: this.now(),
    };
    this.redemptions.push(redemption);
    return redemption;
  }

  redemptionsOf(userId: number): Redemption[] {
    this.getUser(userId);
    return this.redemptions.filter((r) => r.userId === userId);
  }

  private append(userId: number, delta: number, kind: LedgerKind, reason: string): PointsLedger {
    const entry: PointsLedger = { id: this.nextId.ledger++, userId, delta, kind, reason, createdAt: this.now() };
    this.ledger.push(entry);
    return entry;
  }
}

/** A store with a demo catalogue and one demo member, as the server starts with. */
export function seededStore(): LoyaltyStore {
  const store = new LoyaltyStore();
  store.createReward({ name: "Free coffee", cost: 100, stock: 50 });
  store.createReward({ name: "Cinema ticket", cost: 450, stock: 20 });
  store.createReward({ name: "Weekend getaway", cost: 5000, stock: 2 });
  const demo = store.createUser({ email: "demo@example.com", name: "Demo Member" });
  store.earn(demo.id, 250, "welcome bonus");
  return store;
}
