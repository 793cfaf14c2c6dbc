// JSON shapes of the backend API (see backend/src/app.ts). Dates arrive as ISO strings.
export interface Health {
  status: string;
  version: string;
  commit: string;
  /** Each service the backend checks ("database", "redis"): "ok" or what is wrong. */
  checks?: Record<string, string>;
}

export interface Leader {
  rank: number;
  userId: number;
  name: string;
  points: number;
}

export interface User {
  id: number;
  email: string;
  name: string;
  createdAt: string;
}

export type LedgerKind = "EARN" | "REDEEM" | "ADJUST";

export interface LedgerEntry {
  id: number;
  userId: number;
  delta: number;
  kind: LedgerKind;
  reason: string;
  createdAt: string;
}

export interface Reward {
  id: number;
  name: string;
  cost: number;
  stock: number;
  active: boolean;
}
