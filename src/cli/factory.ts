/**
 * Builds the cloud and cluster clients, lazily: the SDKs are loaded only by the commands that use
 * them (the Kubernetes client alone takes about half a second to import).
 */
import type { KubeApi } from '../kube/client.js';
import type { KubeOptions } from '../kube/sdk.js';
import type { AwsApi } from '../providers/eks/client.js';
import type { AwsOptions } from '../providers/eks/sdk.js';
import type { AzureApi } from '../providers/aks/client.js';
import type { AzureOptions } from '../providers/aks/sdk.js';
import type { GcpApi } from '../providers/gke/client.js';
import type { GcpOptions } from '../providers/gke/sdk.js';

export interface Factory {
  aws(opts: AwsOptions): Promise<AwsApi>;
  azure(opts: AzureOptions): Promise<AzureApi>;
  gcp(opts: GcpOptions): Promise<GcpApi>;
  kube(opts: KubeOptions): Promise<KubeApi>;
}

export const defaultFactory: Factory = {
  aws: async (opts) => {
    // The SDK warns on Node 20 that its releases after January 2027 will need Node 22. wid pins its
    // SDK in its lockfile, so the warning is not something a wid user can act on.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    return (await import('../providers/eks/sdk.js')).createAwsApi(opts);
  },
  azure: async (opts) => (await import('../providers/aks/sdk.js')).createAzureApi(opts),
  gcp: async (opts) => (await import('../providers/gke/sdk.js')).createGcpApi(opts),
  kube: async (opts) => (await import('../kube/sdk.js')).createKubeApi(opts),
};
