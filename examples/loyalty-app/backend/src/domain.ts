// The loyalty rules every store applies the same way: input validation and normalisation.
import { ValidationError } from "./errors.js";

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
export const MAX_POINTS_PER_ENTRY = 1_000_000;

/** Trimmed name, lower-case email; throws ValidationError naming what is wrong. */
export function checkNewUser(input: NewUser): NewUser {
  const email = input.email.trim().toLowerCase();
  const name = input.name.trim();
  if (!EMAIL.test(email) || email.length > 254) throw new ValidationError(`invalid email '${input.email}'`);
  if (name === "" || name.length > 100) throw new ValidationError("name must be 1-100 characters");
  return { email, name };
}

/** The reason, trimmed, for an earn of `points`. */
export function checkEarn(points: number, reason: string): string {
  if (!Number.isInteger(points) || points <= 0 || points > MAX_POINTS_PER_ENTRY) {
    throw new ValidationError(`points must be an integer between 1 and ${MAX_POINTS_PER_ENTRY}`);
  }
  const why = reason.trim();
  if (why === "" || why.length > 200) throw new ValidationError("reason must be 1-200 characters");
  return why;
}

export function checkNewReward(input: NewReward): NewReward {
  const name = input.name.trim();
  if (name === "" || name.length > 100) throw new ValidationError("reward name must be 1-100 characters");
  if (!Number.isInteger(input.cost) || input.cost <= 0 || input.cost > MAX_POINTS_PER_ENTRY) {
    throw new ValidationError(`cost must be an integer between 1 and ${MAX_POINTS_PER_ENTRY}`);
  }
  if (!Number.isInteger(input.stock) || input.stock < 0 || input.stock > 1_000_000) {
    throw new ValidationError("stock must be an integer between 0 and 1000000");
  }
  return { name, cost: input.cost, stock: input.stock };
}

/** The messages of the two ways a redemption is refused (409), the same from every store. */
export const outOfStock = (reward: string): string => `reward '${reward}' is out of stock`;
export const tooFewPoints = (balance: number, reward: string, cost: number): string =>
  `not enough points: balance ${balance}, '${reward}' costs ${cost}`;

/** The demo catalogue and member that a fresh database gets (see the demo-data migration). */
export const DEMO_REWARDS: readonly NewReward[] = [
  { name: "Free coffee", cost: 100, stock: 50 },
  { name: "Cinema ticket", cost: 450, stock: 20 },
  { name: "Weekend getaway", cost: 5000, stock: 2 },
];
export const DEMO_MEMBER = { email: "demo@example.com", name: "Demo Member", points: 250, reason: "welcome bonus" };
