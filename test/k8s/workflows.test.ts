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
interface Job {
  'runs-on': string;
  steps: Step[];
  needs?: string | string[];
  if?: string;
  environment?: string | { name: string };
  permissions?: Record<string, string>;
}
interface Workflow {
  name: string;
  on: unknown;
  permissions?: Record<string, string>;
  env?: Record<string, string>;
  jobs: Record<string, Job>;
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
  it('deploy.yml gets AWS credentials by OIDC only, pushes images tagged with the tested commit, then deploys that tag to EKS', () => {
    const workflow = load('deploy.yml');
    const text = readFileSync(path.join(directory, 'deploy.yml'), 'utf8');
    expect(text).not.toMatch(/AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|aws-access-key-id/);
    const credentials = steps(workflow).filter((step) => step.uses?.startsWith('aws-actions/configure-aws-credentials'));
    expect(credentials.length).toBeGreaterThan(0);
    for (const step of credentials) expect(step.with?.['role-to-assume']).toBeDefined();
    // The commit CI tested (the workflow_run's head), not main's newest.
    expect(workflow.env?.DEPLOY_SHA).toBe('${{ github.event.workflow_run.head_sha }}');
    const build = steps(workflow).find((step) => step.uses?.startsWith('docker/build-push-action'));
    expect(build?.with?.tags).toMatch(/:\$\{\{ github\.event\.workflow_run\.head_sha \}\}$/);
    for (const job of Object.values(workflow.jobs)) {
      expect(job.steps.find((step) => step.uses?.startsWith('actions/checkout'))?.with?.ref).toBe('${{ github.event.workflow_run.head_sha }}');
    }
    expect(workflow.jobs.deploy?.needs).toBe('images');
    expect(steps(workflow).some((step) => /npm run deploy -- --env eks --tag "\$DEPLOY_SHA" .*--context /.test(step.run ?? ''))).toBe(true);
  });

  it('kind.yml deploys with the same scripts and runs the smoke test through the ingress', () => {
    const runs = steps(load('kind.yml')).map((step) => step.run ?? '');
    expect(runs.some((run) => run.includes('npm run kind-up'))).toBe(true);
    expect(runs.some((run) => /SMOKE_HTTP_URL=http:\/\/localhost .*npm run smoke/.test(run))).toBe(true);
  });
});

describe('the pipeline, least privilege (issue 13)', () => {
  const iam = (file: string) =>
    JSON.parse(readFileSync(path.join(root, 'deploy/eks/iam', file), 'utf8')) as {
      Statement: { Action: string | string[]; Resource: string | string[]; Condition?: { StringEquals?: Record<string, string> } }[];
    };
  const subjectOf = (file: string) =>
    Object.entries(iam(file).Statement[0]?.Condition?.StringEquals ?? {}).find(([key]) => key === 'token.actions.githubusercontent.com:sub')?.[1];

  it.each(files)('%s uses every action by a full commit SHA, with its tag in a comment', (file) => {
    const lines = readFileSync(path.join(directory, file), 'utf8').split('\n').filter((line) => /^\s*(?:-\s+)?uses:/.test(line));
    expect(lines.length).toBeGreaterThan(0);
    const unpinned = lines.filter((line) => !/uses:\s+(?:\.\/\S+|[\w.-]+\/[\w./-]+@[0-9a-f]{40}\s+#\s+v\d+(?:\.\d+){0,2})\s*$/.test(line));
    expect(unpinned).toEqual([]);
  });

  it('deploy.yml runs only after CI passed on a push to main of this repository', () => {
    const workflow = load('deploy.yml');
    const ci = load('ci.yml');
    expect(workflow.on).toEqual({ workflow_run: { workflows: [ci.name], types: ['completed'], branches: ['main'] } });
    const images = workflow.jobs.images?.if ?? '';
    for (const condition of [
      "github.event.workflow_run.conclusion == 'success'",
      "github.event.workflow_run.event == 'push'",
      "github.event.workflow_run.head_branch == 'main'",
      'github.event.workflow_run.head_repository.full_name == github.repository',
    ]) {
      expect(images).toContain(condition);
    }
    expect(images).not.toMatch(/\|\||always\(\)|failure\(\)/);
    expect(workflow.jobs.deploy?.needs).toBe('images');
    expect(workflow.jobs.deploy?.if).toBe("github.event.workflow_run.conclusion == 'success'");
  });

  it('only the deploy job runs in the production environment; each job gets an OIDC token, the workflow none', () => {
    const workflow = load('deploy.yml');
    expect(workflow.permissions).toEqual({ contents: 'read' });
    expect(workflow.jobs.deploy?.environment).toBe('production');
    expect(workflow.jobs.images?.environment).toBeUndefined();
    for (const id of ['images', 'deploy']) expect(workflow.jobs[id]?.permissions).toEqual({ contents: 'read', 'id-token': 'write' });
  });

  it('pushing and deploying assume different roles, each only in its own job', () => {
    const workflow = load('deploy.yml');
    const roles = (id: string) =>
      (workflow.jobs[id]?.steps ?? []).filter((step) => step.uses?.startsWith('aws-actions/configure-aws-credentials')).map((step) => step.with?.['role-to-assume']);
    expect(roles('images')).toEqual(['${{ vars.AWS_ECR_PUSH_ROLE_ARN }}']);
    expect(roles('deploy')).toEqual(['${{ vars.AWS_EKS_DEPLOY_ROLE_ARN }}']);
    // The deploy job neither builds nor logs in to ECR; the image job runs no deploy.
    expect(workflow.jobs.deploy?.steps.filter((step) => /docker\/|amazon-ecr-login/.test(step.uses ?? ''))).toEqual([]);
    expect(workflow.jobs.images?.steps.filter((step) => /npm run deploy|kubeconfig/.test(step.run ?? ''))).toEqual([]);
  });

  it('the two roles trust this repository by OIDC: pushing from main only, deploying from the production environment only', () => {
    const push = subjectOf('bank-github-ecr-push.trust.json');
    const deploy = subjectOf('bank-github-eks-deploy.trust.json');
    expect(push).toMatch(/^repo:[\w.-]+\/[\w.-]+:ref:refs\/heads\/main$/);
    expect(deploy).toMatch(/^repo:[\w.-]+\/[\w.-]+:environment:production$/);
    expect(push?.split(':')[1]).toBe(deploy?.split(':')[1]);
    for (const file of ['bank-github-ecr-push.trust.json', 'bank-github-eks-deploy.trust.json']) {
      expect(iam(file).Statement).toHaveLength(1);
      expect(iam(file).Statement[0]?.Condition?.StringEquals?.['token.actions.githubusercontent.com:aud']).toBe('sts.amazonaws.com');
    }
    const actions = (file: string) => iam(file).Statement.flatMap((statement) => [statement.Action].flat());
    expect(actions('bank-github-eks-deploy.policy.json')).toEqual(['eks:DescribeCluster']);
    expect(actions('bank-github-ecr-push.policy.json').every((action) => action.startsWith('ecr:'))).toBe(true);
    const pushResources = iam('bank-github-ecr-push.policy.json').Statement.filter((statement) => [statement.Action].flat().includes('ecr:PutImage')).flatMap((statement) => [statement.Resource].flat());
    expect(pushResources.map((arn) => arn.split('/').at(-1)).sort()).toEqual(['bank-api', 'bank-grpc', 'bank-migrator', 'bank-worker']);
  });

  it('Dependabot watches npm, the GitHub Actions and the Dockerfile', () => {
    const config = parseYaml(readFileSync(path.join(root, '.github/dependabot.yml'), 'utf8')) as {
      version: number;
      updates: { 'package-ecosystem': string; directory: string; schedule: { interval: string } }[];
    };
    expect(config.version).toBe(2);
    const ecosystems = config.updates.map((update) => update['package-ecosystem']).sort();
    expect(ecosystems).toEqual(['docker', 'github-actions', 'npm']);
    for (const update of config.updates) expect({ directory: update.directory, interval: typeof update.schedule.interval }).toEqual({ directory: '/', interval: 'string' });
  });
});
