/**
 * EKS (IRSA) phases, in order: the IAM OIDC provider must exist before a trust policy may name it
 * (IAM rejects a Federated principal for a missing provider with MalformedPolicyDocument), the role
 * before its policy attachments, and all of it before the ServiceAccount points pods at the role.
 */
import { CloudError, RuntimeError } from '../../core/errors.js';
import type { LivePhase, Phase, ProviderModule } from '../../core/phase.js';
import type { Step } from '../../core/plan.js';
import { issuerHostPath, subject } from '../../core/naming.js';
import type { EksRequest } from '../../core/request.js';
import { serviceAccountSetupPhase, serviceAccountTeardownPhase, type SaIdentity, type ServiceAccountContext } from '../../kube/phase.js';
import {
  MANAGED_BY_TAG,
  OWNED_ANNOTATIONS,
  ROLE_ARN_ANNOTATION,
  buildAnnotations,
  buildOidcProvider,
  buildPolicyAttachment,
  buildRole,
  injectPod,
  oidcProviderArn,
  roleArn,
  trustStatement,
} from './build.js';
import { NETWORK_ERROR_CODES, type AwsApi, type EksCluster, type IamRole, type PolicyDocument } from './client.js';
import { TRUST_POLICY_QUOTA, addStatement, grants, policySize, removeStatement, statements, trustsProvider } from './trust.js';

export interface EksContext extends ServiceAccountContext {
  aws: AwsApi;
  /** Base pause (ms) before re-reading a trust policy wid wrote, to catch a concurrent writer. */
  retryDelayMs?: number;
  /** The role as planning read it: read once, shared by the CLI (its ARN) and the phases. */
  roleRead?: Promise<IamRole | undefined>;
  /** Teardown: also delete the OIDC provider when it is wid's and nothing else trusts it. */
  deleteOidcProvider?: boolean;
}

/** The role before any change, read once per run; applies read it afresh. */
export function observeRole(req: EksRequest, ctx: EksContext): Promise<IamRole | undefined> {
  ctx.roleRead ??= ctx.aws.getRole(req.roleName);
  return ctx.roleRead;
}

const tagsOf = (tags: { Key: string; Value: string }[]): Record<string, string> => Object.fromEntries(tags.map((t) => [t.Key, t.Value]));
const isWids = (tags: Record<string, string>): boolean => tags[MANAGED_BY_TAG.Key] === MANAGED_BY_TAG.Value;
const prefixOf = (req: EksRequest): string => issuerHostPath(req.issuer);

/** Fails before any change when a trust policy would exceed IAM's quota. */
function checkQuota(req: EksRequest, doc: PolicyDocument): void {
  const size = policySize(doc);
  if (size <= TRUST_POLICY_QUOTA) return;
  throw new RuntimeError('WID_E_AWS_TRUST_POLICY_TOO_LARGE', `the trust policy of role ${req.roleName} would be ${size} characters, over IAM's quota of ${TRUST_POLICY_QUOTA} (ACLSizePerRole)`, {
    hint: 'give this ServiceAccount its own role (--role-name), or ask AWS Service Quotas to raise "Role trust policy length" (up to 4096)',
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Throttling, a server error or a connection that broke before an answer (see sdk.ts): worth reading
 * again and retrying. A time limit that ran out is not (it already waited).
 */
function isTransient(e: unknown): boolean {
  if (!(e instanceof CloudError)) return false;
  return /Throttl|RequestLimitExceeded|ServiceUnavailable|ServiceFailure/.test(e.cloudCode) || NETWORK_ERROR_CODES.includes(e.cloudCode) || (e.status ?? 0) >= 500;
}

/** Trust-policy writes per apply, at most: wid's own retry loop (the SDK never resends these). */
const MAX_TRUST_WRITES = 5;

/**
 * The pause before the next read of a trust policy: about `base` after a write that went through (to
 * catch a concurrent writer), doubling with each write that failed (throttling, 5xx, a dropped
 * connection), up to 8 × base; jittered by ±50 % so that retrying writers spread out.
 */
function backoff(base: number, failures: number): number {
  return base * 2 ** Math.min(failures, 3) * (0.5 + Math.random());
}

/** An IAM call that raced another writer: EntityAlreadyExists on create means "read again and go on". */
function isAlreadyExists(e: unknown): boolean {
  return e instanceof CloudError && e.cloudCode === 'EntityAlreadyExists';
}

const oidcProvider: Phase<EksRequest, EksContext> = {
  name: 'oidc-provider',
  description: 'IAM OIDC identity provider for the cluster issuer, with the audience as a client id',
  build: (req) => [{ phase: 'oidc-provider', action: 'ensure', resource: oidcProviderArn(req), desired: buildOidcProvider(req) }],
  async plan(req, ctx) {
    const arn = oidcProviderArn(req);
    const existing = await ctx.aws.getOidcProvider(arn);
    if (!existing) return [{ phase: 'oidc-provider', action: 'create', resource: arn, desired: buildOidcProvider(req) }];
    if (existing.clientIds.includes(req.audience)) {
      return [{ phase: 'oidc-provider', action: 'noop', resource: arn, desired: { Url: existing.url, ClientIDList: existing.clientIds } }];
    }
    return [{ phase: 'oidc-provider', action: 'update', resource: arn, desired: { OpenIDConnectProviderArn: arn, ClientID: req.audience }, note: `add client id ${req.audience}` }];
  },
  async apply(step, req, ctx) {
    // Read first: another binding of the same run (or anyone) may have done it since the plan.
    const current = await ctx.aws.getOidcProvider(step.resource);
    if (current) {
      if (!current.clientIds.includes(req.audience)) await ctx.aws.addClientId(step.resource, req.audience);
      return;
    }
    const doc = buildOidcProvider(req);
    try {
      await ctx.aws.createOidcProvider({ url: doc.Url, clientIds: doc.ClientIDList, tags: tagsOf(doc.Tags) });
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      const now = await ctx.aws.getOidcProvider(step.resource);
      if (now && !now.clientIds.includes(req.audience)) await ctx.aws.addClientId(step.resource, req.audience);
    }
  },
};

/** The trust policy with this ServiceAccount's statement added, or undefined when the role already trusts it. */
function mergedTrust(req: EksRequest, role: IamRole): PolicyDocument | undefined {
  if (grants(role.trustPolicy, oidcProviderArn(req), prefixOf(req), subject(req.namespace, req.serviceAccount), req.audience)) return undefined;
  return addStatement(role.trustPolicy, trustStatement(req));
}

const iamRole: Phase<EksRequest, EksContext> = {
  name: 'iam-role',
  description: 'IAM role whose trust policy admits the ServiceAccount token',
  build: (req) => [{ phase: 'iam-role', action: 'ensure', resource: roleArn(req), desired: buildRole(req) }],
  async plan(req, ctx) {
    const role = await observeRole(req, ctx);
    if (!role) {
      const desired = buildRole(req);
      checkQuota(req, desired.AssumeRolePolicyDocument);
      return [{ phase: 'iam-role', action: 'create', resource: roleArn(req), desired }];
    }
    const merged = mergedTrust(req, role);
    if (!merged) return [{ phase: 'iam-role', action: 'noop', resource: role.arn, desired: { RoleName: role.name, AssumeRolePolicyDocument: role.trustPolicy } }];
    checkQuota(req, merged);
    return [{ phase: 'iam-role', action: 'update', resource: role.arn, desired: { RoleName: role.name, PolicyDocument: merged }, note: 'trust this ServiceAccount; every other statement stays' }];
  },
  async apply(step, req, ctx) {
    if (step.action === 'create') {
      const desired = buildRole(req);
      try {
        await ctx.aws.createRole({ name: desired.RoleName, trustPolicy: JSON.stringify(desired.AssumeRolePolicyDocument), description: desired.Description, tags: tagsOf(desired.Tags) });
        return;
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
      }
    }
    // Update (or a create that raced another writer): merge into the trust policy as it is now, so a
    // statement someone added since the plan was read is kept. IAM has no etag, so a writer that read
    // before this write can still replace it: after a pause, read again, and merge again while this
    // ServiceAccount's statement is missing.
    const base = ctx.retryDelayMs ?? 1000;
    let failures = 0;
    let overwritten = 0;
    /** The last write's transient failure: what is reported when the writes run out. */
    let failed: unknown;
    for (let attempt = 1; ; attempt++) {
      const role = await ctx.aws.getRole(req.roleName);
      if (!role) throw new RuntimeError('WID_E_AWS_ROLE_GONE', `role ${req.roleName} disappeared while wid was updating it`, { hint: 'run the same command again' });
      const merged = mergedTrust(req, role);
      if (!merged) {
        if (attempt > 2) return;
      } else {
        if (attempt > 1 && failed === undefined) overwritten++;
        if (attempt > MAX_TRUST_WRITES) {
          if (failed !== undefined) throw failed;
          throw new RuntimeError('WID_E_AWS_TRUST_CONTENDED', `the trust policy of role ${req.roleName} kept changing under wid: another writer replaced it ${overwritten} times`, {
            hint: 'run the same command again once the other writer has finished',
          });
        }
        checkQuota(req, merged);
        // Not resent by the SDK on a throttle, 5xx or dropped connection (a resend would carry the
        // document as it was read, over a concurrent writer's change): the loop reads again and
        // merges again instead.
        try {
          await ctx.aws.updateTrustPolicy(req.roleName, JSON.stringify(merged));
          failed = undefined;
        } catch (e) {
          if (!isTransient(e)) throw e;
          failed = e;
          failures++;
        }
      }
      await sleep(backoff(base, failures));
    }
  },
};

const policyAttachment: Phase<EksRequest, EksContext> = {
  name: 'policy-attachment',
  description: 'managed policies attached to the role (--attach-policy-arn)',
  build: (req) =>
    req.policyArns.map((arn) => ({ phase: 'policy-attachment', action: 'ensure' as const, resource: arn, desired: buildPolicyAttachment(req, arn) })),
  async plan(req, ctx) {
    if (req.policyArns.length === 0) return [];
    const attached = await ctx.aws.listAttachedPolicies(req.roleName);
    const steps: Step[] = [];
    for (const arn of req.policyArns) {
      if (attached.includes(arn)) {
        steps.push({ phase: 'policy-attachment', action: 'noop', resource: arn, desired: buildPolicyAttachment(req, arn) });
        continue;
      }
      // Checked now, so a mistyped ARN fails before anything is created.
      if (!(await ctx.aws.policyExists(arn))) {
        throw new CloudError('aws', 'GetPolicy', 'NoSuchEntity', `Policy ${arn} does not exist or is not attachable.`, {
          status: 404,
          hint: `check --attach-policy-arn; list policies with: aws iam list-policies --query "Policies[].Arn"`,
        });
      }
      steps.push({ phase: 'policy-attachment', action: 'create', resource: arn, desired: buildPolicyAttachment(req, arn) });
    }
    return steps;
  },
  apply: (step, req, ctx) => ctx.aws.attachPolicy(req.roleName, step.resource),
};

const saIdentity = (req: EksRequest): SaIdentity => ({ key: ROLE_ARN_ANNOTATION, value: roleArn(req), owned: OWNED_ANNOTATIONS });

const serviceAccount = { ...serviceAccountSetupPhase<EksRequest, EksContext>(saIdentity), description: 'the annotated ServiceAccount in the cluster', build: () => [] };

export const eks: ProviderModule<EksRequest, EksContext> = {
  id: 'eks',
  binding: (req) => ({
    issuer: req.issuer,
    namespace: req.namespace,
    serviceAccount: req.serviceAccount,
    subject: subject(req.namespace, req.serviceAccount),
    audience: req.audience,
  }),
  phases: [oidcProvider, iamRole, policyAttachment, serviceAccount],
  manifestValues: (req) => ({ serviceAccountAnnotations: buildAnnotations(req), podLabels: {} }),
  inject: injectPod,
};

/**
 * The cluster's facts: it must be ACTIVE and have an OIDC issuer. The account and partition come from
 * its ARN (arn:<partition>:eks:<region>:<account>:cluster/<name>), so no STS call is needed.
 */
export async function readCluster(aws: AwsApi, name: string, region: string | undefined): Promise<{ cluster: EksCluster; issuer: string; accountId: string; partition: 'aws' | 'aws-cn' | 'aws-us-gov' }> {
  let cluster: EksCluster;
  try {
    cluster = await aws.describeCluster(name);
  } catch (e) {
    if (e instanceof CloudError && e.cloudCode === 'ResourceNotFoundException') {
      throw new CloudError('aws', 'DescribeCluster', e.cloudCode, e.message, {
        message: `EKS cluster ${name} not found in region ${region ?? '(the default region)'}: ${e.message.replace(/^DescribeCluster failed: /, '')}`,
        hint: `check --region; list the clusters there with: aws eks list-clusters${region === undefined ? '' : ` --region ${region}`}`,
      });
    }
    throw e;
  }
  const arn = /^arn:(aws|aws-cn|aws-us-gov):eks:[^:]+:(\d{12}):cluster\//.exec(cluster.arn);
  if (!arn) throw new RuntimeError('WID_E_AWS_CLUSTER_ARN', `EKS returned an ARN wid cannot read for cluster ${name}: ${JSON.stringify(cluster.arn)}`);
  if (cluster.status !== 'ACTIVE') {
    throw new RuntimeError('WID_E_AWS_CLUSTER_NOT_ACTIVE', `EKS cluster ${name} is ${cluster.status}, not ACTIVE`, { hint: `wait for it: aws eks wait cluster-active --name ${name}` });
  }
  if (!cluster.issuer) {
    throw new RuntimeError('WID_E_AWS_NO_ISSUER', `EKS cluster ${name} has no OIDC issuer`, {
      hint: 'EKS clusters on platform versions older than eks.1 have none; upgrade the cluster, or pass --issuer for a self-managed one',
    });
  }
  return { cluster, issuer: cluster.issuer, accountId: arn[2]!, partition: arn[1] as 'aws' | 'aws-cn' | 'aws-us-gov' };
}

// ---- teardown ----

interface RoleFate {
  role?: IamRole;
  /** The trust policy without this ServiceAccount. */
  remaining?: PolicyDocument;
  deleteRole: boolean;
}

const fates = new WeakMap<EksContext, Promise<RoleFate>>();

/** What teardown does to the role; computed once and shared by the phases that depend on it. */
function roleFate(req: EksRequest, ctx: EksContext): Promise<RoleFate> {
  let fate = fates.get(ctx);
  if (!fate) {
    fate = (async () => {
      const role = await observeRole(req, ctx);
      if (!role) return { deleteRole: false };
      const remaining = removeStatement(role.trustPolicy, trustStatement(req));
      return { role, remaining, deleteRole: statements(remaining).length === 0 && isWids(role.tags) };
    })();
    fates.set(ctx, fate);
  }
  return fate;
}

const iamRoleTeardown: LivePhase<EksRequest, EksContext> = {
  name: 'iam-role',
  async plan(req, ctx) {
    const fate = await roleFate(req, ctx);
    const resource = roleArn(req);
    const { role, remaining } = fate;
    if (!role || !remaining) return [{ phase: 'iam-role', action: 'noop', resource, desired: {}, note: 'not found' }];
    if (fate.deleteRole) {
      const attached = await ctx.aws.listAttachedPolicies(role.name);
      return [
        ...attached.map((arn): Step => ({ phase: 'policy-attachment', action: 'delete', resource: arn, desired: { RoleName: role.name, PolicyArn: arn } })),
        { phase: 'iam-role', action: 'delete', resource: role.arn, desired: { RoleName: role.name }, note: 'created by wid and trusts nothing else' },
      ];
    }
    if (JSON.stringify(remaining) === JSON.stringify(role.trustPolicy)) {
      const sub = subject(req.namespace, req.serviceAccount);
      const viaWildcard = grants(role.trustPolicy, oidcProviderArn(req), prefixOf(req), sub, req.audience);
      return [{ phase: 'iam-role', action: 'noop', resource: role.arn, desired: {}, note: viaWildcard ? 'trusts this ServiceAccount only through a statement wid did not write, which is left alone' : 'does not trust this ServiceAccount' }];
    }
    if (statements(remaining).length === 0) {
      return [{ phase: 'iam-role', action: 'noop', resource: role.arn, desired: {}, note: `not created by wid and trusts only this ServiceAccount: delete it yourself with aws iam delete-role --role-name ${role.name}` }];
    }
    return [{ phase: 'iam-role', action: 'update', resource: role.arn, desired: { RoleName: role.name, PolicyDocument: remaining }, note: 'stop trusting this ServiceAccount; every other statement stays' }];
  },
  async apply(step, req, ctx) {
    if (step.phase === 'policy-attachment') return ctx.aws.detachPolicy(req.roleName, step.resource);
    // Decided again on the trust policy as it is now: a statement added since the plan was read stays,
    // and a role someone now shares is updated rather than deleted. As in setup, the trust-policy write
    // is not resent by the SDK: a throttle, 5xx or dropped connection means reading again.
    const base = ctx.retryDelayMs ?? 1000;
    let failures = 0;
    let failed: unknown;
    for (let attempt = 1; ; attempt++) {
      const role = await ctx.aws.getRole(req.roleName);
      if (!role) return;
      const remaining = removeStatement(role.trustPolicy, trustStatement(req));
      if (remaining === role.trustPolicy) return;
      // Empty now: a role wid created goes (also when the plan only updated it: the other statements it
      // kept have gone meanwhile, e.g. another binding of the same teardown); any other role stays.
      const deleteRole = statements(remaining).length === 0 && isWids(role.tags);
      if (!deleteRole && statements(remaining).length === 0) return;
      if (attempt > MAX_TRUST_WRITES) {
        if (failed !== undefined) throw failed;
        throw new RuntimeError('WID_E_AWS_TRUST_CONTENDED', `the trust policy of role ${req.roleName} kept changing under wid: this ServiceAccount's statement was back after ${attempt - 1} removals`, {
          hint: 'run the same command again once the other writer has finished',
        });
      }
      try {
        if (deleteRole) {
          // Planned as an update, its policies were not planned for detaching: IAM refuses to delete a role that has any.
          if (step.action !== 'delete') for (const arn of await ctx.aws.listAttachedPolicies(req.roleName)) await ctx.aws.detachPolicy(req.roleName, arn);
          return await ctx.aws.deleteRole(req.roleName);
        }
        await ctx.aws.updateTrustPolicy(req.roleName, JSON.stringify(remaining));
        failed = undefined;
      } catch (e) {
        if (!isTransient(e)) throw e;
        failed = e;
        failures++;
      }
      await sleep(backoff(base, failures));
    }
  },
};

const oidcProviderTeardown: LivePhase<EksRequest, EksContext> = {
  name: 'oidc-provider',
  async plan(req, ctx) {
    const arn = oidcProviderArn(req);
    if (!ctx.deleteOidcProvider) return [{ phase: 'oidc-provider', action: 'noop', resource: arn, desired: {}, note: 'kept (--delete-oidc-provider removes it when wid created it and no role trusts it)' }];
    const provider = await ctx.aws.getOidcProvider(arn);
    if (!provider) return [{ phase: 'oidc-provider', action: 'noop', resource: arn, desired: {}, note: 'not found' }];
    if (!isWids(provider.tags)) return [{ phase: 'oidc-provider', action: 'noop', resource: arn, desired: {}, note: 'not created by wid; kept' }];
    const fate = await roleFate(req, ctx);
    const others = (await ctx.aws.listRoles())
      .filter((r) => (r.name === req.roleName ? !fate.deleteRole && trustsProvider(fate.remaining ?? r.trustPolicy, arn) : trustsProvider(r.trustPolicy, arn)))
      .map((r) => r.name);
    if (others.length > 0) return [{ phase: 'oidc-provider', action: 'noop', resource: arn, desired: {}, note: `still trusted by role ${others.join(', ')}; kept` }];
    return [{ phase: 'oidc-provider', action: 'delete', resource: arn, desired: { OpenIDConnectProviderArn: arn } }];
  },
  apply: (step, _req, ctx) => ctx.aws.deleteOidcProvider(step.resource),
};

/** Teardown phases, in order: the ServiceAccount stops pointing at the role first, then the role goes. */
export const eksTeardownPhases: LivePhase<EksRequest, EksContext>[] = [serviceAccountTeardownPhase<EksRequest, EksContext>(saIdentity), iamRoleTeardown, oidcProviderTeardown];
