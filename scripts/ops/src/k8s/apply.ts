import { PatchStrategy, type KubernetesObject, type KubernetesObjectApi } from '@kubernetes/client-node';
import type { Manifest } from '../manifests/manifest.ts';
import { EXIT, httpStatusOf, OperatorError } from './errors.ts';

export const FIELD_MANAGER = 'bank-deploy';

/**
 * Server-side applies each object in order (force: the scripts own these fields).
 *
 * @throws OperatorError (exit 1) naming the object when the API refuses it, with a hint when
 *   its kind is not served (a missing CRD, e.g. External Secrets not installed).
 */
export async function serverSideApply(api: KubernetesObjectApi, objects: readonly Manifest[], log: (line: string) => void): Promise<void> {
  for (const object of objects) {
    const what = `${object.kind}/${object.metadata.name}`;
    try {
      await api.patch(object as KubernetesObject, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    } catch (error) {
      const status = httpStatusOf(error);
      const notServed = /Unrecognized API version and kind|not found/i.test((error as Error).message) && status === undefined;
      const hint = notServed ? ` (is the CRD for ${object.apiVersion} installed?)` : '';
      throw new OperatorError(`server-side apply of ${what} failed: ${status ? `HTTP ${status}` : (error as Error).message}${hint}`, EXIT.unexpected, {
        cause: error,
      });
    }
    log(`applied ${what}`);
  }
}
