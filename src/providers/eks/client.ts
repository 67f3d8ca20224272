/**
 * The narrow slice of AWS (EKS + IAM) that wid needs, in plain types. sdk.ts implements it over the
 * AWS SDK; phases.ts only sees this interface.
 */

/**
 * The error codes (CloudError.cloudCode) of a call whose connection broke before any answer came: the
 * Node network error code, kept as the code since there is no AWS one.
 */
export const NETWORK_ERROR_CODES: readonly string[] = ['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ECONNABORTED'];

export interface EksCluster {
  name: string;
  arn: string;
  status: string;
  /** `cluster.identity.oidc.issuer`, exactly as EKS returns it; absent when the cluster has none. */
  issuer?: string;
  endpoint?: string;
}

export interface OidcProvider {
  arn: string;
  /** As IAM returns it: without the scheme. */
  url: string;
  clientIds: string[];
  tags: Record<string, string>;
}

/** An IAM policy document as JSON data. */
export type PolicyDocument = { Version?: string; Statement?: unknown; [key: string]: unknown };

export interface IamRole {
  name: string;
  arn: string;
  /** The trust policy, decoded (IAM returns it URL-encoded). */
  trustPolicy: PolicyDocument;
  tags: Record<string, string>;
}

export interface AwsApi {
  /** Throws CloudError (ResourceNotFoundException …) when the cluster is not there. */
  describeCluster(name: string): Promise<EksCluster>;
  getOidcProvider(arn: string): Promise<OidcProvider | undefined>;
  /** Returns the new provider's ARN. */
  createOidcProvider(input: { url: string; clientIds: string[]; tags: Record<string, string> }): Promise<string>;
  addClientId(arn: string, clientId: string): Promise<void>;
  deleteOidcProvider(arn: string): Promise<void>;
  getRole(name: string): Promise<IamRole | undefined>;
  createRole(input: { name: string; trustPolicy: string; description: string; tags: Record<string, string> }): Promise<void>;
  updateTrustPolicy(name: string, trustPolicy: string): Promise<void>;
  deleteRole(name: string): Promise<void>;
  /** Every role in the account (all pages), trust policies decoded. */
  listRoles(): Promise<IamRole[]>;
  /** ARNs of the managed policies attached to a role; [] when the role does not exist. */
  listAttachedPolicies(roleName: string): Promise<string[]>;
  policyExists(arn: string): Promise<boolean>;
  attachPolicy(roleName: string, policyArn: string): Promise<void>;
  detachPolicy(roleName: string, policyArn: string): Promise<void>;
}
