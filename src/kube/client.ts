/**
 * The narrow slice of the Kubernetes API wid needs. sdk.ts implements it over
 * @kubernetes/client-node; phases only see this interface.
 */
import type { KubeObject } from '../core/phase.js';

export interface KubeApi {
  /** The kube context in use, for messages. */
  context: string;
  namespaceExists(name: string): Promise<boolean>;
  createNamespace(name: string): Promise<void>;
  getServiceAccount(namespace: string, name: string): Promise<KubeObject | undefined>;
  createServiceAccount(namespace: string, body: KubeObject): Promise<void>;
  /** RFC 7386 merge patch: touches only the keys it names; null deletes a key. */
  patchServiceAccount(namespace: string, name: string, mergePatch: KubeObject): Promise<void>;
  deleteServiceAccount(namespace: string, name: string): Promise<void>;
}
