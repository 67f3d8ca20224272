/**
 * AwsApi over the AWS SDK for JavaScript v3. Endpoints come from the SDK's own configuration
 * (AWS_ENDPOINT_URL_IAM / _EKS / _STS, profiles); credentials from the default provider chain.
 */
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import {
  AddClientIDToOpenIDConnectProviderCommand,
  AttachRolePolicyCommand,
  CreateOpenIDConnectProviderCommand,
  CreateRoleCommand,
  DeleteOpenIDConnectProviderCommand,
  DeleteRoleCommand,
  DetachRolePolicyCommand,
  GetOpenIDConnectProviderCommand,
  GetPolicyCommand,
  GetRoleCommand,
  IAMClient,
  paginateListAttachedRolePolicies,
  paginateListRoles,
  UpdateAssumeRolePolicyCommand,
  type Role,
  type Tag,
} from '@aws-sdk/client-iam';
import { CloudError } from '../../core/errors.js';
import { NETWORK_ERROR_CODES, type AwsApi, type IamRole, type PolicyDocument } from './client.js';

export interface AwsOptions {
  region?: string;
  profile?: string;
  /** Per-attempt time limit (ms); the SDK retries up to 4 attempts in all. */
  timeoutMs?: number;
}

/** The IAM permission each call needs, named in AccessDenied hints. */
const PERMISSION: Record<string, string> = {
  DescribeCluster: 'eks:DescribeCluster',
  GetOpenIDConnectProvider: 'iam:GetOpenIDConnectProvider',
  CreateOpenIDConnectProvider: 'iam:CreateOpenIDConnectProvider (and iam:TagOpenIDConnectProvider)',
  AddClientIDToOpenIDConnectProvider: 'iam:AddClientIDToOpenIDConnectProvider',
  DeleteOpenIDConnectProvider: 'iam:DeleteOpenIDConnectProvider',
  GetRole: 'iam:GetRole',
  CreateRole: 'iam:CreateRole (and iam:TagRole)',
  UpdateAssumeRolePolicy: 'iam:UpdateAssumeRolePolicy',
  DeleteRole: 'iam:DeleteRole',
  ListRoles: 'iam:ListRoles',
  ListAttachedRolePolicies: 'iam:ListAttachedRolePolicies',
  GetPolicy: 'iam:GetPolicy',
  AttachRolePolicy: 'iam:AttachRolePolicy',
  DetachRolePolicy: 'iam:DetachRolePolicy',
};

interface SdkError {
  name: string;
  message: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

function isSdkError(e: unknown): e is SdkError {
  return e instanceof Error && typeof (e as { $metadata?: unknown }).$metadata === 'object';
}

/**
 * The AWS error code as the service sent it: awsQuery services (IAM, STS) keep it in `Code`
 * (`NoSuchEntity`); REST-JSON services (EKS) send it as the error type, which becomes the name
 * (`ResourceNotFoundException`).
 */
export function awsCode(e: unknown): string | undefined {
  if (!isSdkError(e)) return undefined;
  return e.Code ?? e.name;
}

/**
 * A connection that failed before any answer came: no HTTP status, a Node network error code. The
 * SDK's HTTP handler names a reset connection `TimeoutError` ("socket hang up", code ECONNRESET), so
 * the code tells it apart from a time limit that ran out.
 */
function networkCode(e: unknown): string | undefined {
  if (!(e instanceof Error)) return undefined;
  const { code, $metadata } = e as { code?: unknown; $metadata?: { httpStatusCode?: number } };
  return typeof code === 'string' && NETWORK_ERROR_CODES.includes(code) && $metadata?.httpStatusCode === undefined ? code : undefined;
}

function toCloudError(operation: string, e: unknown): never {
  if (e instanceof CloudError) throw e;
  const network = networkCode(e);
  if (network !== undefined) {
    throw new CloudError('aws', operation, network, (e as Error).message, {
      hint: 'the connection to AWS broke before an answer came (after retries); check the network or endpoint, and run the same command again',
      cause: e,
    });
  }
  if (isSdkError(e)) {
    const code = awsCode(e) ?? e.name;
    const status = e.$metadata?.httpStatusCode;
    let hint: string | undefined;
    if (code === 'AccessDenied' || code === 'AccessDeniedException' || code === 'UnauthorizedOperation') {
      hint = `the AWS identity running wid needs ${PERMISSION[operation] ?? operation}; check it with: aws sts get-caller-identity`;
    } else if (code === 'Throttling' || code === 'ThrottlingException') {
      hint = 'AWS throttled the request after retries; wait a moment and run the same command again';
    } else if (code === 'ExpiredToken' || code === 'ExpiredTokenException' || code === 'InvalidClientTokenId' || code === 'UnrecognizedClientException') {
      hint = 'the AWS credentials are invalid or expired; refresh them (aws sso login, or your CI credentials)';
    }
    throw new CloudError('aws', operation, code, e.message, { ...(status === undefined ? {} : { status }), ...(hint === undefined ? {} : { hint }), cause: e });
  }
  if (e instanceof Error && (e.name === 'TimeoutError' || /timed? ?out/i.test(e.message))) {
    throw new CloudError('aws', operation, 'Timeout', e.message, { hint: 'AWS did not answer in time (after retries); check the network or endpoint, or raise WID_TIMEOUT_MS' });
  }
  if (e instanceof Error && /Region is missing/i.test(e.message)) {
    throw new CloudError('aws', operation, 'RegionMissing', 'no AWS region is configured', { hint: 'pass --region, or set AWS_REGION' });
  }
  if (e instanceof Error && (e.name === 'CredentialsProviderError' || /Could not load credentials/i.test(e.message))) {
    throw new CloudError('aws', operation, 'CredentialsMissing', e.message, { hint: 'configure AWS credentials (aws configure, aws sso login, --profile, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)' });
  }
  throw e;
}

async function call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    return toCloudError(operation, e);
  }
}

/** `undefined` when the call fails with one of `absent` (e.g. NoSuchEntity). */
async function read<T>(operation: string, absent: string[], fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    if (absent.includes(awsCode(e) ?? '')) return undefined;
    return toCloudError(operation, e);
  }
}

function tagsToRecord(tags: Tag[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}

function recordToTags(tags: Record<string, string>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

/** IAM returns trust policies URL-encoded ("the response includes the same policy as a URL-encoded JSON string"). */
export function decodePolicy(text: string | undefined): PolicyDocument {
  if (text === undefined || text === '') return {};
  const decoded = text.trimStart().startsWith('{') ? text : decodeURIComponent(text);
  return JSON.parse(decoded) as PolicyDocument;
}

function toRole(r: Partial<Role>): IamRole {
  return { name: r.RoleName ?? '', arn: r.Arn ?? '', trustPolicy: decodePolicy(r.AssumeRolePolicyDocument), tags: tagsToRecord(r.Tags) };
}

export function createAwsApi(opts: AwsOptions): AwsApi {
  const config = {
    ...(opts.region === undefined ? {} : { region: opts.region }),
    ...(opts.profile === undefined ? {} : { profile: opts.profile }),
    maxAttempts: 4,
    // The SDK's HTTP handler only warns when requestTimeout passes and keeps waiting unless told to
    // throw; throwing lets the SDK retry, so a dead endpoint costs attempts x timeout, then fails.
    requestHandler: { connectionTimeout: opts.timeoutMs ?? 10_000, requestTimeout: opts.timeoutMs ?? 30_000, throwOnRequestTimeout: true },
  };
  let eksClient: EKSClient | undefined;
  let iamClient: IAMClient | undefined;
  let iamOnceClient: IAMClient | undefined;
  // Trust-policy writes are never resent by the SDK: a resend after a throttle would carry the
  // document as it was read, over a concurrent writer's change. The caller reads again instead.
  const iamOnce = (): IAMClient => (iamOnceClient ??= new IAMClient({ ...config, maxAttempts: 1 }));
  const eks = (): EKSClient => (eksClient ??= new EKSClient(config));
  const iam = (): IAMClient => (iamClient ??= new IAMClient(config));

  return {
    describeCluster: (name) =>
      call('DescribeCluster', async () => {
        const out = await eks().send(new DescribeClusterCommand({ name }));
        const c = out.cluster;
        return {
          name: c?.name ?? name,
          arn: c?.arn ?? '',
          status: String(c?.status ?? 'UNKNOWN'),
          ...(c?.identity?.oidc?.issuer ? { issuer: c.identity.oidc.issuer } : {}),
          ...(c?.endpoint ? { endpoint: c.endpoint } : {}),
        };
      }),
    getOidcProvider: (arn) =>
      read('GetOpenIDConnectProvider', ['NoSuchEntity'], async () => {
        const out = await iam().send(new GetOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn }));
        return { arn, url: out.Url ?? '', clientIds: out.ClientIDList ?? [], tags: tagsToRecord(out.Tags) };
      }),
    createOidcProvider: (input) =>
      call('CreateOpenIDConnectProvider', async () => {
        // No ThumbprintList: it is optional and IAM verifies the issuer's CA itself. An empty list
        // would serialise as `ThumbprintList=`, so the field is left out rather than sent empty.
        const out = await iam().send(new CreateOpenIDConnectProviderCommand({ Url: input.url, ClientIDList: input.clientIds, Tags: recordToTags(input.tags) }));
        return out.OpenIDConnectProviderArn ?? '';
      }),
    addClientId: (arn, clientId) =>
      call('AddClientIDToOpenIDConnectProvider', async () => {
        await iam().send(new AddClientIDToOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn, ClientID: clientId }));
      }),
    // Deletes and detaches are done when the thing is already gone: a resend after a lost answer (the
    // first attempt went through) gets NoSuchEntity, and so does a run that lost a race to another one.
    deleteOidcProvider: async (arn) => {
      await read('DeleteOpenIDConnectProvider', ['NoSuchEntity'], async () => {
        await iam().send(new DeleteOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn }));
      });
    },
    getRole: (name) =>
      read('GetRole', ['NoSuchEntity'], async () => {
        const out = await iam().send(new GetRoleCommand({ RoleName: name }));
        return toRole(out.Role ?? {});
      }),
    createRole: (input) =>
      call('CreateRole', async () => {
        await iam().send(new CreateRoleCommand({ RoleName: input.name, AssumeRolePolicyDocument: input.trustPolicy, Description: input.description, Tags: recordToTags(input.tags) }));
      }),
    updateTrustPolicy: (name, trustPolicy) =>
      call('UpdateAssumeRolePolicy', async () => {
        await iamOnce().send(new UpdateAssumeRolePolicyCommand({ RoleName: name, PolicyDocument: trustPolicy }));
      }),
    deleteRole: async (name) => {
      await read('DeleteRole', ['NoSuchEntity'], async () => {
        await iam().send(new DeleteRoleCommand({ RoleName: name }));
      });
    },
    listRoles: () =>
      call('ListRoles', async () => {
        const roles: IamRole[] = [];
        for await (const page of paginateListRoles({ client: iam() }, {})) roles.push(...(page.Roles ?? []).map(toRole));
        return roles;
      }),
    listAttachedPolicies: async (roleName) =>
      (await read('ListAttachedRolePolicies', ['NoSuchEntity'], async () => {
        const arns: string[] = [];
        for await (const page of paginateListAttachedRolePolicies({ client: iam() }, { RoleName: roleName })) {
          arns.push(...(page.AttachedPolicies ?? []).map((p) => p.PolicyArn ?? ''));
        }
        return arns;
      })) ?? [],
    policyExists: async (arn) => (await read('GetPolicy', ['NoSuchEntity'], async () => iam().send(new GetPolicyCommand({ PolicyArn: arn })))) !== undefined,
    attachPolicy: (roleName, policyArn) =>
      call('AttachRolePolicy', async () => {
        await iam().send(new AttachRolePolicyCommand({ RoleName: roleName, PolicyArn: policyArn }));
      }),
    detachPolicy: async (roleName, policyArn) => {
      // NoSuchEntity: the role is gone or the policy is not attached to it ("Policy X was not found.").
      await read('DetachRolePolicy', ['NoSuchEntity'], async () => {
        await iam().send(new DetachRolePolicyCommand({ RoleName: roleName, PolicyArn: policyArn }));
      });
    },
  };
}
