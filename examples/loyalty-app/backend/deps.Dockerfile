# The backend's production dependencies, as their own image: rebuilt only when the lock file (or the
# base image) changes, so a source change never sends node_modules to the builder again. Built from the
# app's root (context `.`, whose .dockerignore lets in only backend/package*.json and
# backend/node_modules: the classic builder reads one .dockerignore per context, and the backend's own
# context leaves node_modules out). The context's node_modules may be the full install or the
# production one; it is pruned offline to production dependencies either way.
#
#   docker compose build backend-deps           (docker compose build builds it before the backend)

FROM ci-actions/node:local
# `docker image prune --filter label=loyalty-app.image` removes leftovers of every image of the app.
LABEL loyalty-app.image=backend-deps
WORKDIR /app
COPY backend/package.json backend/package-lock.json ./
COPY backend/node_modules ./node_modules
# --omit=optional as well: Prisma 7's @prisma/client lists `prisma` and `typescript` as optional peers,
# so `--omit=dev` alone keeps the whole CLI (~250 MB) as "devOptional".
RUN npm prune --omit=dev --omit=optional --offline --no-audit --no-fund --loglevel=error \
    && rm -rf /root/.npm
