import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { EXIT, OperatorError } from '../k8s/errors.ts';
import { parseManifests, type Manifest } from './manifest.ts';

const run = promisify(execFile);

/**
 * The oldest kubectl whose built-in kustomize renders deploy/ as the checks expect: 1.27 ships
 * kustomize v5, the line the manifests are written and tested against.
 */
export const MIN_KUBECTL = { major: 1, minor: 27 } as const;

export interface KustomizeOptions {
  /** The kubectl program (default: `kubectl` from PATH). */
  kubectl?: string | undefined;
  /** Environment of the kubectl child process (default: this process's). */
  env?: NodeJS.ProcessEnv | undefined;
}

/**
 * Checks that kubectl is installed and at least {@link MIN_KUBECTL}; returns its version.
 *
 * @throws OperatorError (exit 7) in one line when kubectl is missing, too old or unreadable.
 */
export async function checkKubectl(options: KustomizeOptions = {}): Promise<string> {
  const kubectl = options.kubectl ?? 'kubectl';
  const wanted = `${MIN_KUBECTL.major}.${MIN_KUBECTL.minor}`;
  let stdout: string;
  try {
    ({ stdout } = await run(kubectl, ['version', '--client', '-o', 'json'], { env: options.env ?? process.env, timeout: 30_000 }));
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') {
      throw new OperatorError(`kubectl is not installed (${kubectl} not found on PATH): the manifests are rendered with \`kubectl kustomize\`; install kubectl >= ${wanted}`, EXIT.missingProgram);
    }
    throw new OperatorError(`cannot run \`${kubectl} version --client\`: ${firstLine(error)}; kubectl >= ${wanted} is needed`, EXIT.missingProgram);
  }
  let version: { major?: string; minor?: string; gitVersion?: string } | undefined;
  try {
    version = (JSON.parse(stdout) as { clientVersion?: typeof version }).clientVersion;
  } catch {
    version = undefined;
  }
  // Vendor builds report the minor version with a suffix ("32+"); the number is what counts.
  const major = Number.parseInt(version?.major ?? '', 10);
  const minor = Number.parseInt(version?.minor ?? '', 10);
  if (!Number.isFinite(major) || !Number.isFinite(minor)) {
    throw new OperatorError(`cannot read kubectl's version from \`${kubectl} version --client -o json\`; kubectl >= ${wanted} is needed`, EXIT.missingProgram);
  }
  const found = version?.gitVersion ?? `v${major}.${minor}`;
  if (major < MIN_KUBECTL.major || (major === MIN_KUBECTL.major && minor < MIN_KUBECTL.minor)) {
    throw new OperatorError(`kubectl ${found} is too old: the manifests are rendered with \`kubectl kustomize\` of kubectl >= ${wanted}; upgrade kubectl`, EXIT.missingProgram);
  }
  return found;
}

/**
 * Renders a kustomization directory with `kubectl kustomize`, so what the operator scripts apply
 * and what the manifest checks read is exactly what `kubectl apply -k` would send.
 *
 * @throws OperatorError (exit 7) when kubectl is missing or too old; (exit 1) when kustomize
 *   refuses the directory or prints something that is not a list of Kubernetes objects.
 */
export async function renderKustomization(directory: string, options: KustomizeOptions = {}): Promise<Manifest[]> {
  await checkKubectl(options);
  const kubectl = options.kubectl ?? 'kubectl';
  let stdout: string;
  try {
    ({ stdout } = await run(kubectl, ['kustomize', directory], { env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024, timeout: 60_000 }));
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new OperatorError(`kubectl kustomize ${directory} failed: ${stderr ? stderr.split('\n')[0] : firstLine(error)}`, EXIT.unexpected, { cause: error });
  }
  try {
    return parseManifests(stdout, `kubectl kustomize ${directory}`);
  } catch (error) {
    throw new OperatorError((error as Error).message, EXIT.unexpected, { cause: error });
  }
}

function firstLine(error: unknown): string {
  return String((error as Error).message ?? error).split('\n')[0] ?? '';
}
