// The loyalty store in Postgres, through Prisma 7's client on the `pg` driver adapter (@prisma/adapter-pg):
// no query engine binary, only JavaScript and the client's bundled WebAssembly query compiler.
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { Prisma, PrismaClient, type PointsLedger, type Redemption, type Reward, type User } from "./generated/prisma/client.js";
import { LedgerKind } from "./generated/prisma/enums.js";
import { checkEarn, checkNewReward, checkNewUser, outOfStock, tooFewPoints, type NewReward, type NewUser } from "./domain.js";
import { ConflictError, NotFoundError } from "./errors.js";
import type { EarnedTotal, LoyaltyStore, UserSummary } from "./store.js";

export interface PrismaStoreOptions {
  databaseUrl: string;
  /** Connections in the pool (both colours of a blue-green deploy hold one each). */
  poolSize?: number;
  /** The newest migration this release ships: check() fails until the database has it applied. */
  requiredMigration?: string;
  /** Called with errors of idle pooled connections (a database restart), which would otherwise crash. */
  onError?: (err: Error) => void;
}

const CHECK_TIMEOUT_MS = 2_000;

type Tx = Prisma.TransactionClient;

function isUniqueViolation(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002";
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class PrismaStore implements LoyaltyStore {
  readonly pool: pg.Pool;
  readonly prisma: PrismaClient;
  private readonly requiredMigration?: string;

  constructor(options: PrismaStoreOptions) {
    this.pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      statement_timeout: 15_000,
      application_name: "loyalty-app-backend",
    });
    this.pool.on("error", (err) => options.onError?.(err));
    this.prisma = new PrismaClient({ adapter: new PrismaPg(this.pool) });
    this.requiredMigration = options.requiredMigration;
  }

  async createUser(input: NewUser): Promise<User> {
    const data = checkNewUser(input);
    try {
      return await this.prisma.user.create({ data });
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a user with email '${data.email}' exists`);
      throw err;
    }
  }

  async getUser(id: number): Promise<User> {
    return this.userOrThrow(this.prisma, id);
  }

  async usersById(ids: readonly number[]): Promise<User[]> {
    if (ids.length === 0) return [];
    return this.prisma.user.findMany({ where: { id: { in: [...ids] } } });
  }

  async listUsers(): Promise<UserSummary[]> {
    const [users, sums] = await Promise.all([
      this.prisma.user.findMany({ orderBy: { id: "asc" } }),
      this.prisma.pointsLedger.groupBy({ by: ["userId"], _sum: { delta: true } }),
    ]);
    const balances = new Map(sums.map((s) => [s.userId, s._sum.delta ?? 0]));
    return users.map((user) => ({ user, balance: balances.get(user.id) ?? 0 }));
  }

  async balance(userId: number): Promise<number> {
    await this.userOrThrow(this.prisma, userId);
    return this.sum(this.prisma, userId);
  }

  async entries(userId: number): Promise<PointsLedger[]> {
    await this.userOrThrow(this.prisma, userId);
    return this.prisma.pointsLedger.findMany({ where: { userId }, orderBy: { id: "asc" } });
  }

  async earn(userId: number, points: number, reason: string): Promise<PointsLedger> {
    const why = checkEarn(points, reason);
    await this.userOrThrow(this.prisma, userId);
    return this.prisma.pointsLedger.create({ data: { userId, delta: points, kind: LedgerKind.EARN, reason: why } });
  }

  async earned(userId: number): Promise<number> {
    await this.userOrThrow(this.prisma, userId);
    const total = await this.prisma.pointsLedger.aggregate({ where: { userId, kind: LedgerKind.EARN }, _sum: { delta: true } });
    return total._sum.delta ?? 0;
  }

  async earnedTotals(): Promise<EarnedTotal[]> {
    const sums = await this.prisma.pointsLedger.groupBy({
      by: ["userId"],
      where: { kind: LedgerKind.EARN },
      _sum: { delta: true },
    });
    return sums.map((s) => ({ userId: s.userId, earned: s._sum.delta ?? 0 }));
  }

  async createReward(input: NewReward): Promise<Reward> {
    const data = checkNewReward(input);
    try {
      return await this.prisma.reward.create({ data });
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a reward named '${data.name}' exists`);
      throw err;
    }
  }

  async listRewards(): Promise<Reward[]> {
    return this.prisma.reward.findMany({ where: { active: true }, orderBy: { id: "asc" } });
  }

  async redeem(userId: number, rewardId: number): Promise<Redemption> {
    return this.prisma.$transaction(async (tx) => {
      // The member's row lock serialises their redemptions: the balance read and the debit cannot
      // interleave with another redemption of theirs.
      const locked = await tx.$queryRaw<{ id: number }[]>`SELECT "id" FROM "User" WHERE "id" = ${userId} FOR UPDATE`;
      if (locked.length === 0) throw new NotFoundError(`user ${userId} not found`);
      const reward = await tx.reward.findUnique({ where: { id: rewardId } });
      if (reward === null || !reward.active) throw new NotFoundError(`reward ${rewardId} not found`);
      if (reward.stock <= 0) throw new ConflictError(outOfStock(reward.name));
      const balance = await this.sum(tx, userId);
      if (balance < reward.cost) throw new ConflictError(tooFewPoints(balance, reward.name, reward.cost));
      // Stock is shared by every member: take one only if one is left at this moment.
      const taken = await tx.reward.updateMany({ where: { id: rewardId, stock: { gt: 0 } }, data: { stock: { decrement: 1 } } });
      if (taken.count === 0) throw new ConflictError(outOfStock(reward.name));
      await tx.pointsLedger.create({
        data: { userId, delta: -reward.cost, kind: LedgerKind.REDEEM, reason: `redeemed '${reward.name}'` },
      });
      return tx.redemption.create({ data: { userId, rewardId, cost: reward.cost } });
    });
  }

  async redemptionsOf(userId: number): Promise<Redemption[]> {
    await this.userOrThrow(this.prisma, userId);
    return this.prisma.redemption.findMany({ where: { userId }, orderBy: { id: "asc" } });
  }

  /** The database answers, and has this release's newest migration applied. */
  async check(): Promise<void> {
    if (this.requiredMigration === undefined) {
      await withTimeout(this.pool.query("SELECT 1"), CHECK_TIMEOUT_MS, "the database");
      return;
    }
    let rows: unknown[];
    try {
      const result = await withTimeout(
        this.pool.query(
          `SELECT 1 FROM "_prisma_migrations" WHERE "migration_name" = $1 AND "finished_at" IS NOT NULL AND "rolled_back_at" IS NULL LIMIT 1`,
          [this.requiredMigration],
        ),
        CHECK_TIMEOUT_MS,
        "the database",
      );
      rows = result.rows;
    } catch (err) {
      if ((err as { code?: string }).code === "42P01") {
        throw new Error("no migrations applied to the database (run npm run db:migrate:deploy)", { cause: err });
      }
      throw err;
    }
    if (rows.length === 0) {
      throw new Error(`migration ${this.requiredMigration} is not applied (run npm run db:migrate:deploy)`);
    }
  }

  async close(): Promise<void> {
    await this.prisma.$disconnect();
    await this.pool.end();
  }

  private async userOrThrow(db: Tx | PrismaClient, id: number): Promise<User> {
    const user = await db.user.findUnique({ where: { id } });
    if (user === null) throw new NotFoundError(`user ${id} not found`);
    return user;
  }

  private async sum(db: Tx | PrismaClient, userId: number): Promise<number> {
    const total = await db.pointsLedger.aggregate({ where: { userId }, _sum: { delta: true } });
    return total._sum.delta ?? 0;
  }
}
