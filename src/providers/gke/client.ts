/**
 * The narrow slice of Google Cloud (Container, Resource Manager, IAM) that wid needs, in plain types.
 * sdk.ts implements it over the @googleapis REST clients; phases.ts only sees this interface.
 */

export interface GkeCluster {
  name: string;
  location: string;
  /** `workloadIdentityConfig.workloadPool`, e.g. PROJECT.svc.id.goog; absent when not enabled. */
  workloadPool?: string;
  autopilot: boolean;
  /** Each node pool and its `config.workloadMetadataConfig.mode` (absent when unset). */
  nodePools: { name: string; mode?: string }[];
}

export interface PolicyBinding {
  role: string;
  members: string[];
  condition?: { title?: string; expression?: string; description?: string };
}

/** An IAM policy as Google sends it; fields wid does not know are kept as they are. */
export interface IamPolicy {
  version?: number;
  etag?: string;
  bindings?: PolicyBinding[];
  [key: string]: unknown;
}

export interface GoogleServiceAccount {
  email: string;
  name: string;
  displayName?: string;
  description?: string;
}

export interface GcpApi {
  /** Throws CloudError (NOT_FOUND …) when the cluster is not there. */
  getCluster(project: string, location: string, name: string): Promise<GkeCluster>;
  /** The project's number, from Resource Manager (`projects/NUMBER`). */
  getProjectNumber(project: string): Promise<string>;
  getServiceAccount(email: string): Promise<GoogleServiceAccount | undefined>;
  createServiceAccount(project: string, accountId: string, body: { displayName: string; description: string }): Promise<GoogleServiceAccount>;
  deleteServiceAccount(email: string): Promise<void>;
  /** Policy version 3 is requested, so conditional bindings come back intact. */
  getServiceAccountPolicy(email: string): Promise<IamPolicy>;
  setServiceAccountPolicy(email: string, policy: IamPolicy): Promise<IamPolicy>;
  getProjectPolicy(project: string): Promise<IamPolicy>;
  setProjectPolicy(project: string, policy: IamPolicy): Promise<IamPolicy>;
}
