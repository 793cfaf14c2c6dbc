"""prepare-workspace: one install and one Prisma generate per run, packed for every later job."""
