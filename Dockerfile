# syntax=docker/dockerfile:1.7
# One Dockerfile, four images (and a build stage for the web app): `docker build --target api|grpc|worker|migrator -t bank-<target>:<tag> .`
# Each image holds the production dependencies of its own workspace only, the TypeScript sources
# Node 24 runs directly (type stripping, no build step), and runs one process as a non-root user.
# No secret or .env enters any layer: configuration comes from the environment at run time
# (Kubernetes Secrets filled by External Secrets, or AWS Secrets Manager read at start-up).

# The base image written out, not built from an ARG: Dependabot reads only a literal FROM, and
# proposes newer Node 24 releases here (.github/dependabot.yml). A digest
# (`node:24.22.3-bookworm-slim@sha256:...`, from `docker buildx imagetools inspect`) is added by
# someone who can read it from the registry; Dependabot then moves it with the tag.
FROM node:24.22.3-bookworm-slim AS base
WORKDIR /app
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

# Only the manifests, so the dependency layers are cached until a package.json or the lockfile changes.
FROM base AS manifests
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY proto/package.json proto/
COPY edge/package.json edge/
COPY services/api/package.json services/api/
COPY services/grpc/package.json services/grpc/
COPY services/worker/package.json services/worker/
COPY services/migrator/package.json services/migrator/
COPY scripts/dev/package.json scripts/dev/
COPY scripts/ops/package.json scripts/ops/
COPY web/package.json web/

FROM manifests AS deps-api
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --workspace=services/api
FROM manifests AS deps-grpc
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --workspace=services/grpc
FROM manifests AS deps-worker
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --workspace=services/worker
FROM manifests AS deps-migrator
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --workspace=services/migrator

# The web app (served by the API under /app), built with its build tools in a stage of its own:
# the API image receives only the static files of web/dist, never Vite or the app's sources.
FROM manifests AS web-build
RUN --mount=type=cache,target=/root/.npm npm ci --include=dev --workspace=web
COPY proto/ proto/
COPY web/ web/
RUN npm run build -w web

# Shared by every runtime image: the libraries all processes load. Files stay owned by root and
# read-only for the process user, so the container runs with a read-only root filesystem.
FROM base AS runtime
COPY package.json ./
COPY shared/ shared/
COPY proto/ proto/
# The operator's admin command (`kubectl exec ... scripts/ops/src/admin.ts`, or a Job on any image):
# one file over shared/, so every image can change a role where DATABASE_URL is already set.
COPY scripts/ops/src/admin.ts scripts/ops/src/
# libuv reads UV_THREADPOOL_SIZE once, when its pool starts, so it is set here and not in code.
# bcrypt takes at most BCRYPT_CONCURRENCY (2) of these threads; the rest stay free for DNS
# lookups, file reads and zlib during a login burst.
ENV UV_THREADPOOL_SIZE=8
# Every listener binds loopback unless HOST says otherwise (so `npm start` on a laptop is not open
# to its network); in a container the ports must answer on the pod's address.
ENV HOST=0.0.0.0
# uid/gid 1000 is the image's `node` user; numeric so Kubernetes can verify runAsNonRoot.
USER 1000:1000
ENTRYPOINT ["node", "--disable-warning=ExperimentalWarning"]

# Each service's CMD loads its OpenTelemetry preload first (--import, as the ESM hooks need); it
# does nothing unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
FROM runtime AS api
COPY --from=deps-api /app/ ./
# The protocol edge: the two servers, and the worker (webhook bodies use its proto JSON mapping).
COPY edge/ edge/
COPY services/api/ services/api/
COPY --from=web-build /app/web/dist/ web/dist/
EXPOSE 8080
CMD ["--import=./services/api/src/instrument.ts", "services/api/src/main.ts"]

FROM runtime AS grpc
COPY --from=deps-grpc /app/ ./
COPY edge/ edge/
COPY services/grpc/ services/grpc/
EXPOSE 9090 9464
CMD ["--import=./services/grpc/src/instrument.ts", "services/grpc/src/main.ts"]

FROM runtime AS worker
COPY --from=deps-worker /app/ ./
COPY edge/ edge/
COPY services/worker/ services/worker/
EXPOSE 9464
CMD ["--import=./services/worker/src/instrument.ts", "services/worker/src/main.ts"]

FROM runtime AS migrator
COPY --from=deps-migrator /app/ ./
COPY services/migrator/ services/migrator/
CMD ["services/migrator/src/main.ts", "up"]
