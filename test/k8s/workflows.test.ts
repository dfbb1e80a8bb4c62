// The GitHub Actions workflows parse and reference only scripts, files and Dockerfile targets
// that exist. Checks every workflow present (ci.yml is written elsewhere and may be absent).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parse as parseYaml } from 'yaml';

const root = path.resolve(import.meta.dirname, '../..');
const directory = path.join(root, '.github/workflows');
const files = readdirSync(directory).filter((file) => /\.ya?ml$/.test(file));
const packageScripts = Object.keys((JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);
const dockerTargets = [...readFileSync(path.join(root, 'Dockerfile'), 'utf8').matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((match) => match[1]);

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Workflow {
  name: string;
  on: unknown;
  permissions?: Record<string, string>;
  jobs: Record<string, { 'runs-on': string; steps: Step[]; needs?: string | string[] }>;
}

function load(file: string): Workflow {
  return parseYaml(readFileSync(path.join(directory, file), 'utf8')) as Workflow;
}

function steps(workflow: Workflow): Step[] {
  return Object.values(workflow.jobs).flatMap((job) => job.steps);
}

describe.each(files)('.github/workflows/%s', (file) => {
  it('parses as a workflow: a name, triggers, and jobs with runners and steps', () => {
    const workflow = load(file);
    expect(typeof workflow.name).toBe('string');
    expect(workflow.on).toBeDefined();
    for (const [id, job] of Object.entries(workflow.jobs)) {
      expect({ id, runsOn: typeof job['runs-on'], steps: Array.isArray(job.steps) && job.steps.length > 0 }).toEqual({ id, runsOn: 'string', steps: true });
      for (const need of [job.needs ?? []].flat()) expect(Object.keys(workflow.jobs)).toContain(need);
    }
  });

  it('runs only npm scripts that package.json defines', () => {
    const used = steps(load(file)).flatMap((step) => [...(step.run ?? '').matchAll(/npm run ([\w:-]+)/g)].map((match) => match[1]));
    for (const name of used) expect(packageScripts).toContain(name);
  });

  it('references only files and folders of the repository that exist', () => {
    const workflow = load(file);
    const referenced: string[] = [];
    for (const step of steps(workflow)) {
      if (step.uses?.startsWith('./')) referenced.push(step.uses);
      for (const key of ['node-version-file', 'file', 'config', 'cache-dependency-path']) {
        const value = step.with?.[key];
        if (typeof value === 'string' && !value.includes('${{')) referenced.push(value);
      }
      for (const match of (step.run ?? '').matchAll(/(?:^|[\s"'=])((?:deploy|scripts|services|shared|proto|test|bench|\.ci)\/[\w./-]*\w)/g)) {
        if (match[1]) referenced.push(match[1]);
      }
      for (const match of (step.run ?? '').matchAll(/\bnode\s+(?:--[\w=-]+\s+)*([\w./-]+\.(?:ts|js|mjs))/g)) {
        if (match[1]) referenced.push(match[1]);
      }
    }
    const missing = referenced.filter((reference) => !existsSync(path.join(root, reference)));
    expect(missing).toEqual([]);
  });

  it('builds only Dockerfile targets that exist', () => {
    for (const step of steps(load(file)).filter((candidate) => candidate.uses?.startsWith('docker/build-push-action'))) {
      const target = String(step.with?.target ?? '');
      const targets = target.includes('matrix.service') ? ['api', 'grpc', 'worker', 'migrator'] : [target];
      for (const name of targets) expect(dockerTargets).toContain(name);
    }
  });
});

describe('deploy and kind workflows', () => {
  it('deploy.yml gets AWS credentials by OIDC only, pushes SHA-tagged images, then deploys that tag to EKS', () => {
    const workflow = load('deploy.yml');
    const text = readFileSync(path.join(directory, 'deploy.yml'), 'utf8');
    expect(workflow.permissions?.['id-token']).toBe('write');
    expect(text).not.toMatch(/AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|aws-access-key-id/);
    const credentials = steps(workflow).filter((step) => step.uses?.startsWith('aws-actions/configure-aws-credentials'));
    expect(credentials.length).toBeGreaterThan(0);
    for (const step of credentials) expect(step.with?.['role-to-assume']).toBeDefined();
    const build = steps(workflow).find((step) => step.uses?.startsWith('docker/build-push-action'));
    expect(build?.with?.tags).toMatch(/:\$\{\{ github\.sha \}\}$/);
    expect(workflow.jobs.deploy?.needs).toBe('images');
    expect(steps(workflow).some((step) => /npm run deploy -- --env eks --tag "\$GITHUB_SHA" .*--context /.test(step.run ?? ''))).toBe(true);
  });

  it('kind.yml deploys with the same scripts and runs the smoke test through the ingress', () => {
    const runs = steps(load('kind.yml')).map((step) => step.run ?? '');
    expect(runs.some((run) => run.includes('npm run kind-up'))).toBe(true);
    expect(runs.some((run) => /SMOKE_HTTP_URL=http:\/\/localhost .*npm run smoke/.test(run))).toBe(true);
  });
});
