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

type Env = Record<string, string | undefined>;

/** ARM and the sign-in authority from the environment (AZURE_RESOURCE_MANAGER_ENDPOINT, AZURE_AUTHORITY_HOST). */
export function azureEndpoints(env: Env): { endpoint?: string; authorityHost?: string } {
  return {
    ...(env.AZURE_RESOURCE_MANAGER_ENDPOINT ? { endpoint: env.AZURE_RESOURCE_MANAGER_ENDPOINT } : {}),
    ...(env.AZURE_AUTHORITY_HOST ? { authorityHost: env.AZURE_AUTHORITY_HOST } : {}),
  };
}

/** gcloud's own endpoint overrides, so one environment points both gcloud and wid elsewhere. */
export function gcpEndpoints(env: Env): { iam?: string; container?: string; cloudresourcemanager?: string } {
  return {
    ...(env.CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM ? { iam: env.CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM } : {}),
    ...(env.CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER ? { container: env.CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER } : {}),
    ...(env.CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER ? { cloudresourcemanager: env.CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER } : {}),
  };
}
