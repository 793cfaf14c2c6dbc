// Prisma 7 CLI configuration. `prisma generate` needs no database; the URL is only read by commands
// that connect (migrate, db push), so a placeholder keeps generate working without DATABASE_URL.
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: {
    path: "prisma/migrations",
  },
  datasource: {
    url: process.env.DATABASE_URL ?? "postgresql://loyalty:loyalty@127.0.0.1:5432/loyalty",
  },
});
