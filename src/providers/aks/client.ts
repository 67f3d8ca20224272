/**
 * The narrow slice of Azure Resource Manager that wid needs, in plain types. sdk.ts implements it over
 * the Azure SDK; phases.ts only sees this interface.
 */

export interface AksCluster {
  id: string;
  name: string;
  location: string;
  /** `oidcIssuerProfile.issuerURL`, byte for byte (AKS issuers end in "/"). */
  issuer?: string;
  oidcIssuerEnabled: boolean;
  workloadIdentityEnabled: boolean;
}

export interface ManagedIdentity {
  id: string;
  name: string;
  location: string;
  clientId: string;
  principalId: string;
  tenantId: string;
  tags: Record<string, string>;
}

export interface FederatedCredential {
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
}

export interface RoleAssignment {
  id: string;
  name: string;
  scope: string;
  roleDefinitionId: string;
  principalId: string;
  description?: string;
}

export interface AzureApi {
  /** Throws CloudError (ResourceNotFound, ResourceGroupNotFound …) when the cluster is not there. */
  getCluster(resourceGroup: string, name: string): Promise<AksCluster>;
  getIdentity(resourceGroup: string, name: string): Promise<ManagedIdentity | undefined>;
  /** Every user-assigned identity in the subscription (all pages). */
  listIdentities(): Promise<ManagedIdentity[]>;
  createIdentity(resourceGroup: string, name: string, body: { location: string; tags: Record<string, string> }): Promise<ManagedIdentity>;
  deleteIdentity(resourceGroup: string, name: string): Promise<void>;
  /** All of the identity's federated credentials (every page). */
  listFederatedCredentials(resourceGroup: string, identity: string): Promise<FederatedCredential[]>;
  putFederatedCredential(resourceGroup: string, identity: string, credential: FederatedCredential): Promise<void>;
  deleteFederatedCredential(resourceGroup: string, identity: string, name: string): Promise<void>;
  /** The id of the role definition with this name, as seen from `scope`; undefined when there is none. */
  findRoleDefinition(scope: string, roleName: string): Promise<string | undefined>;
  /** Role assignments of a principal that apply at `scope` (ARM also returns those above and below it). */
  listRoleAssignments(scope: string, principalId: string): Promise<RoleAssignment[]>;
  createRoleAssignment(scope: string, name: string, properties: { roleDefinitionId: string; principalId: string; principalType: 'ServicePrincipal'; description: string }): Promise<void>;
  deleteRoleAssignment(id: string): Promise<void>;
}
