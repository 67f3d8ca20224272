/**
 * A validated setup request: what src/cli builds from flags, and all the providers ever see.
 */
import type { AwsPartition } from './validate.js';

export interface CommonRequest {
  namespace: string;
  serviceAccount: string;
  /** Render the Pod with what the cloud's webhook would inject (clusters without the webhook). */
  inject: boolean;
}

export interface EksRequest extends CommonRequest {
  provider: 'eks';
  /** The EKS cluster the issuer, account and partition were read from (live runs). */
  cluster?: string;
  issuer: string;
  accountId: string;
  partition: AwsPartition;
  roleName: string;
  /** Live runs: the ARN of the role when it exists already (a role with a path has it in its ARN). */
  existingRoleArn?: string;
  policyArns: string[];
  audience: string;
  tokenExpiration?: number;
  stsRegionalEndpoints?: boolean;
  region?: string;
}

export interface AzureRoleAssignmentRequest {
  /** As given: a role name, GUID or definition id. */
  role: string;
  scope: string;
  /** The role's definition id, once known (a name is looked up in live runs). */
  roleDefinitionId?: string;
}

export interface AksRequest extends CommonRequest {
  provider: 'aks';
  /** Live runs: the AKS cluster the issuer (and default location) come from, and its resource group. */
  cluster?: string;
  clusterResourceGroup?: string;
  issuer: string;
  /** The identity's ids: flags offline; read from (or given by creating) the identity in live runs. */
  clientId?: string;
  tenantId?: string;
  principalId?: string;
  subscription: string;
  /** The managed identity's resource group. */
  resourceGroup: string;
  identity: string;
  location?: string;
  roleAssignments: AzureRoleAssignmentRequest[];
}

export interface GkeRequest extends CommonRequest {
  provider: 'gke';
  /** Live runs: the GKE cluster (and its location) the workload pool is read from. */
  cluster?: string;
  location?: string;
  issuer?: string;
  project: string;
  mode: 'gsa' | 'direct';
  gsa?: string;
  projectNumber?: string;
  workloadPool: string;
  roles: string[];
}

export type SetupRequest = EksRequest | AksRequest | GkeRequest;
