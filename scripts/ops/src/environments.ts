import path from 'node:path';
import { containersOf, splitImage, type Manifest } from './manifests/manifest.ts';
import { renderKustomization } from './manifests/kubectl-kustomize.ts';
import { EXIT, OperatorError } from './k8s/errors.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');
export const NAMESPACE = 'bank';
export const KIND_CONTEXT = 'kind-bank';
export const SERVICES = ['api', 'grpc', 'worker', 'migrator'] as const;
export const DEPLOYMENTS = ['bank-api', 'bank-grpc', 'bank-worker'] as const;

export type EnvironmentName = 'kind' | 'eks';

export interface EnvironmentOptions {
  env: EnvironmentName;
  tag: string;
  /** ECR registry host (`<account>.dkr.ecr.<region>.amazonaws.com`), EKS only. */
  registry?: string | undefined;
  /** Kind without AWS: deploy/kind/no-aws (the API's and gRPC's Secrets are made by hand or by kind-up). */
  noAws?: boolean | undefined;
  repoRoot?: string | undefined;
}

/** A tag Docker and Kubernetes labels both accept, never `latest` (rollouts must be pinned). */
export function checkTag(tag: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/.test(tag) || tag === 'latest') {
    throw new OperatorError(`--tag must be an image tag like a commit SHA (1-63 of [A-Za-z0-9_.-], not "latest"), got "${tag}"`, EXIT.usage);
  }
}

/** The kustomization directory each environment deploys. */
export function manifestDirectory(options: EnvironmentOptions): string {
  const root = options.repoRoot ?? REPO_ROOT;
  if (options.env === 'eks') return path.join(root, 'deploy/eks');
  return path.join(root, options.noAws ? 'deploy/kind/no-aws' : 'deploy/kind');
}

/** Whether a kubeconfig context is the environment's cluster (a reason when it is not). */
export function contextCheck(env: EnvironmentName): (context: string, server: string) => string | undefined {
  if (env === 'kind') {
    return (context) => (context === KIND_CONTEXT ? undefined : `--env kind deploys only to the Kind cluster's context "${KIND_CONTEXT}" (npm run kind-up creates it)`);
  }
  return (context) => (context.startsWith('kind-') ? '--env eks cannot deploy to a Kind cluster' : undefined);
}

/**
 * Renders the environment's manifests with every bank image set to `tag` (and, on EKS, to the
 * given ECR registry, with the IRSA role ARNs and the Secrets Manager region of that account).
 *
 * @throws OperatorError (exit 2) for a bad tag or registry.
 */
export async function renderEnvironment(options: EnvironmentOptions): Promise<Manifest[]> {
  checkTag(options.tag);
  const objects = await renderKustomization(manifestDirectory(options));
  let imageFor = (service: string) => `bank-${service}:${options.tag}`;
  if (options.env === 'eks') {
    const match = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com$/.exec(options.registry ?? '');
    if (!match) {
      throw new OperatorError('--env eks needs --registry <account>.dkr.ecr.<region>.amazonaws.com (or ECR_REGISTRY)', EXIT.usage);
    }
    const [, account = '', region = ''] = match;
    imageFor = (service) => `${options.registry}/bank-${service}:${options.tag}`;
    for (const object of objects) {
      const annotations = object.metadata.annotations;
      const role = annotations?.['eks.amazonaws.com/role-arn'];
      if (annotations && role) annotations['eks.amazonaws.com/role-arn'] = role.replace(/^arn:aws:iam::\d{12}:/, `arn:aws:iam::${account}:`);
      const aws = (object.spec as { provider?: { aws?: { region?: string } } } | undefined)?.provider?.aws;
      if (object.kind === 'SecretStore' && aws) aws.region = region;
    }
  }
  for (const object of objects) {
    for (const container of containersOf(object)) {
      const service = /(?:^|\/)bank-(api|grpc|worker|migrator)$/.exec(splitImage(container.image).name)?.[1];
      if (service) container.image = imageFor(service);
    }
  }
  return objects;
}
