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
  role: string;
  scope: string;
}

export interface AksRequest extends CommonRequest {
  provider: 'aks';
  issuer: string;
  clientId: string;
  tenantId?: string;
  principalId?: string;
  subscription: string;
  resourceGroup: string;
  identity: string;
  location?: string;
  roleAssignments: AzureRoleAssignmentRequest[];
}

export interface GkeRequest extends CommonRequest {
  provider: 'gke';
  issuer?: string;
  project: string;
  mode: 'gsa' | 'direct';
  gsa?: string;
  projectNumber?: string;
  workloadPool: string;
  roles: string[];
}

export type SetupRequest = EksRequest | AksRequest | GkeRequest;
