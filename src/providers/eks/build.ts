/**
 * Pure builders for EKS (IRSA): the IAM OIDC provider, the role and its trust policy, the policy
 * attachments, the ServiceAccount annotations and the webhook's Pod mutation. No SDK, no I/O.
 */
import type { KubeObject } from '../../core/phase.js';
import { issuerHostPath, subject } from '../../core/naming.js';
import type { EksRequest } from '../../core/request.js';
import { ensureContainerEnv, ensureMount, ensureVolume, podContainers } from '../../kube/pod.js';

export const ROLE_ARN_ANNOTATION = 'eks.amazonaws.com/role-arn';
export const AUDIENCE_ANNOTATION = 'eks.amazonaws.com/audience';
export const STS_REGIONAL_ANNOTATION = 'eks.amazonaws.com/sts-regional-endpoints';
export const TOKEN_EXPIRATION_ANNOTATION = 'eks.amazonaws.com/token-expiration';
export const DEFAULT_AUDIENCE = 'sts.amazonaws.com';

/** The amazon-eks-pod-identity-webhook's names (pkg/handler/handler.go). */
export const TOKEN_VOLUME = 'aws-iam-token';
export const TOKEN_MOUNT_PATH = '/var/run/secrets/eks.amazonaws.com/serviceaccount';
export const TOKEN_FILE = `${TOKEN_MOUNT_PATH}/token`;
export const DEFAULT_TOKEN_EXPIRATION = 86400;

export const MANAGED_BY_TAG = { Key: 'managed-by', Value: 'wid' };

/** `arn:<partition>:iam::<account>:oidc-provider/<issuer host+path>`; deterministic, so it can be read back. */
export function oidcProviderArn(req: Pick<EksRequest, 'partition' | 'accountId' | 'issuer'>): string {
  return `arn:${req.partition}:iam::${req.accountId}:oidc-provider/${issuerHostPath(req.issuer)}`;
}

/** The role's ARN: as IAM reported it for an existing role (it may carry a path), else built from its name. */
export function roleArn(req: Pick<EksRequest, 'partition' | 'accountId' | 'roleName' | 'existingRoleArn'>): string {
  return req.existingRoleArn ?? `arn:${req.partition}:iam::${req.accountId}:role/${req.roleName}`;
}

/** The CreateOpenIDConnectProvider request: the issuer verbatim, the audience as the client id, no thumbprint. */
export function buildOidcProvider(req: EksRequest): { Url: string; ClientIDList: string[]; Tags: { Key: string; Value: string }[] } {
  const tags = [MANAGED_BY_TAG, ...(req.cluster === undefined ? [] : [{ Key: 'wid/cluster', Value: req.cluster }])];
  return { Url: req.issuer, ClientIDList: [req.audience], Tags: tags };
}

/**
 * The role trust policy exactly as eksctl writes it (pkg/cfn/builder/iam_test.go): one statement,
 * `StringEquals` on `<host+path>:aud` and `<host+path>:sub`. The condition keys carry no scheme:
 * with `https://` IAM answers "MalformedPolicyDocument: Condition can contain only one colon."
 */
export function buildTrustPolicy(req: EksRequest): Record<string, unknown> {
  const prefix = issuerHostPath(req.issuer);
  return {
    Statement: [
      {
        Action: ['sts:AssumeRoleWithWebIdentity'],
        Condition: {
          StringEquals: {
            [`${prefix}:aud`]: req.audience,
            [`${prefix}:sub`]: subject(req.namespace, req.serviceAccount),
          },
        },
        Effect: 'Allow',
        Principal: { Federated: oidcProviderArn(req) },
      },
    ],
    Version: '2012-10-17',
  };
}

/** The CreateRole request, the trust policy as a document (sent as its JSON text). */
export function buildRole(req: EksRequest): { RoleName: string; Description: string; AssumeRolePolicyDocument: Record<string, unknown>; Tags: { Key: string; Value: string }[] } {
  return {
    RoleName: req.roleName,
    Description: `IAM role for Kubernetes ServiceAccount ${req.namespace}/${req.serviceAccount} [managed by wid]`,
    AssumeRolePolicyDocument: buildTrustPolicy(req),
    Tags: [
      MANAGED_BY_TAG,
      ...(req.cluster === undefined ? [] : [{ Key: 'wid/cluster', Value: req.cluster }]),
      { Key: 'wid/namespace', Value: req.namespace },
      { Key: 'wid/service-account', Value: req.serviceAccount },
    ],
  };
}

/** The one trust statement wid adds for this ServiceAccount. */
export function trustStatement(req: EksRequest): Record<string, unknown> {
  return (buildTrustPolicy(req).Statement as Record<string, unknown>[])[0]!;
}

/** wid's own annotations on an EKS ServiceAccount (teardown removes exactly these). */
export const OWNED_ANNOTATIONS = [ROLE_ARN_ANNOTATION, AUDIENCE_ANNOTATION, STS_REGIONAL_ANNOTATION, TOKEN_EXPIRATION_ANNOTATION];

export function buildPolicyAttachment(req: EksRequest, policyArn: string): Record<string, unknown> {
  return { RoleName: req.roleName, PolicyArn: policyArn };
}

/** The annotations the pod identity webhook reads from the ServiceAccount (pkg/annotations.go). */
export function buildAnnotations(req: EksRequest): Record<string, string> {
  const a: Record<string, string> = { [ROLE_ARN_ANNOTATION]: roleArn(req) };
  if (req.audience !== DEFAULT_AUDIENCE) a[AUDIENCE_ANNOTATION] = req.audience;
  if (req.stsRegionalEndpoints !== undefined) a[STS_REGIONAL_ANNOTATION] = String(req.stsRegionalEndpoints);
  if (req.tokenExpiration !== undefined) a[TOKEN_EXPIRATION_ANNOTATION] = String(req.tokenExpiration);
  return a;
}

/**
 * What amazon-eks-pod-identity-webhook adds to a Pod at admission (pkg/handler/handler.go), for
 * clusters that run no webhook: per container, the env it lacks and the token mount; the projected
 * token volume first in the Pod's volumes.
 */
export function injectPod(pod: KubeObject, req: EksRequest): void {
  for (const c of podContainers(pod)) {
    const env = Array.isArray(c.env) ? (c.env as { name?: unknown }[]) : [];
    const has = (n: string): boolean => env.some((e) => e.name === n);
    const webIdentity = has('AWS_ROLE_ARN') || has('AWS_WEB_IDENTITY_TOKEN_FILE');
    const region = has('AWS_REGION') || has('AWS_DEFAULT_REGION');
    const sts = has('AWS_STS_REGIONAL_ENDPOINTS');
    // The webhook leaves a container alone (no env, no mount) when it already sets all three.
    if (webIdentity && region && sts) continue;
    const add: [string, string][] = [];
    if (req.stsRegionalEndpoints === true && !sts) add.push(['AWS_STS_REGIONAL_ENDPOINTS', 'regional']);
    if (req.region !== undefined && !region) add.push(['AWS_DEFAULT_REGION', req.region], ['AWS_REGION', req.region]);
    if (!webIdentity) add.push(['AWS_ROLE_ARN', roleArn(req)], ['AWS_WEB_IDENTITY_TOKEN_FILE', TOKEN_FILE]);
    ensureContainerEnv(c, add);
    ensureMount(c, { name: TOKEN_VOLUME, readOnly: true, mountPath: TOKEN_MOUNT_PATH });
  }
  ensureVolume(pod, {
    name: TOKEN_VOLUME,
    projected: {
      sources: [
        {
          serviceAccountToken: {
            audience: req.audience,
            expirationSeconds: req.tokenExpiration ?? DEFAULT_TOKEN_EXPIRATION,
            path: 'token',
          },
        },
      ],
    },
  });
}
