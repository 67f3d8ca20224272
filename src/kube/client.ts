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
  /** Pods in one namespace, or in all of them. */
  listPods(namespace?: string): Promise<KubeObject[]>;
  /** Secrets in one namespace, or in all of them. */
  listSecrets(namespace?: string): Promise<KubeObject[]>;
  /** MutatingWebhookConfigurations (admissionregistration.k8s.io/v1). */
  listMutatingWebhooks(): Promise<KubeObject[]>;
  /** A TokenRequest for the ServiceAccount; the token is handed back, never logged. */
  createToken(namespace: string, name: string, audiences: string[], expirationSeconds: number): Promise<{ token: string; expiresAt?: string }>;
  /** The cluster's OIDC discovery document (`/.well-known/openid-configuration`), through the API server. */
  openidConfiguration(): Promise<Record<string, unknown>>;
  /** The cluster's service-account signing keys (`/openid/v1/jwks`), through the API server. */
  jwks(): Promise<{ keys: Record<string, unknown>[] }>;
}
