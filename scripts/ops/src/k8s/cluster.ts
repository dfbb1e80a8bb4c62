import { AppsV1Api, BatchV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, VersionApi } from '@kubernetes/client-node';
import { EXIT, httpStatusOf, OperatorError } from './errors.ts';

/** The typed API clients the scripts use, bound to one verified context. */
export interface Cluster {
  context: string;
  server: string;
  objects: KubernetesObjectApi;
  apps: AppsV1Api;
  batch: BatchV1Api;
  core: CoreV1Api;
}

export interface ConnectOptions {
  /** Path of a kubeconfig file; default: $KUBECONFIG or ~/.kube/config. */
  kubeconfig?: string | undefined;
  /** Context to use; default: the kubeconfig's current context. */
  context?: string | undefined;
  /** Decides whether the chosen context is the right cluster; returns a reason when it is not. */
  checkContext: (context: string, server: string) => string | undefined;
}

/**
 * Loads the kubeconfig, refuses a context that is not the intended cluster, and checks that the
 * API server answers before anything is changed.
 *
 * @throws OperatorError (exit 3) when the kubeconfig or context is wrong or the cluster is unreachable.
 */
export async function connectCluster(options: ConnectOptions): Promise<Cluster> {
  const kc = new KubeConfig();
  try {
    if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
    else kc.loadFromDefault();
  } catch (error) {
    throw new OperatorError(`cannot read the kubeconfig: ${(error as Error).message}`, EXIT.cluster, { cause: error });
  }
  const context = options.context ?? kc.getCurrentContext();
  const contextObject = kc.getContextObject(context);
  if (!context || !contextObject) {
    const known = kc.getContexts().map((candidate) => candidate.name);
    throw new OperatorError(`kubeconfig has no context "${context}" (known: ${known.join(', ') || 'none'})`, EXIT.cluster);
  }
  kc.setCurrentContext(context);
  const server = kc.getCurrentCluster()?.server ?? '';
  const wrong = options.checkContext(context, server);
  if (wrong) throw new OperatorError(`refusing context "${context}" (${server}): ${wrong}`, EXIT.cluster);

  try {
    await kc.makeApiClient(VersionApi).getCode();
  } catch (error) {
    const status = httpStatusOf(error);
    const detail = status === undefined ? describeNetworkError(error) : `the API server answered HTTP ${status}`;
    throw new OperatorError(`cannot reach the Kubernetes API of context "${context}" at ${server}: ${detail}`, EXIT.cluster, { cause: error });
  }

  return {
    context,
    server,
    objects: KubernetesObjectApi.makeApiClient(kc),
    apps: kc.makeApiClient(AppsV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    core: kc.makeApiClient(CoreV1Api),
  };
}

function describeNetworkError(error: unknown): string {
  const chain: string[] = [];
  let current: unknown = error;
  while (current && chain.length < 4) {
    const { code, message } = current as { code?: string; message?: string };
    chain.push(code ?? message ?? String(current));
    current = (current as { cause?: unknown }).cause;
  }
  return chain.join(': ');
}
