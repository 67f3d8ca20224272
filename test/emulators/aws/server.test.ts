/**
 * Self-tests for the AWS emulator, driven by the real AWS SDK v3 clients: if the SDK parses every
 * answer here, wid's own calls will parse too. See SPEC.md for the contract under test.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
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
  ListAttachedRolePoliciesCommand,
  ListOpenIDConnectProvidersCommand,
  ListOpenIDConnectProviderTagsCommand,
  ListRolesCommand,
  ListRoleTagsCommand,
  RemoveClientIDFromOpenIDConnectProviderCommand,
  TagRoleCommand,
  UntagRoleCommand,
  UpdateAssumeRolePolicyCommand,
  paginateListRoles,
} from '@aws-sdk/client-iam';
import { DescribeClusterCommand, EKSClient, ListClustersCommand } from '@aws-sdk/client-eks';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { startAwsEmulator, type AwsEmulator } from './server.js';

process.env.AWS_EC2_METADATA_DISABLED = 'true';

const ISSUER = 'https://oidc.eks.us-west-2.amazonaws.com/id/A39A2842863C47208955D753DE205E6E';
const HOST_PATH = ISSUER.slice('https://'.length);
const ACCOUNT = '111122223333';
const PROVIDER_ARN = `arn:aws:iam::${ACCOUNT}:oidc-provider/${HOST_PATH}`;
const S3_RO = 'arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess';

/** The eksctl-style IRSA trust policy (aws.md §1.4), pretty-printed so whitespace matters. */
function trustPolicy(opts: { provider?: string; keyPrefix?: string; subs?: string[] } = {}): string {
  const prefix = opts.keyPrefix ?? HOST_PATH;
  const subs = opts.subs ?? ['system:serviceaccount:default:sa-1'];
  return JSON.stringify(
    {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Federated: opts.provider ?? PROVIDER_ARN },
          Action: ['sts:AssumeRoleWithWebIdentity'],
          Condition: {
            StringEquals: { [`${prefix}:aud`]: 'sts.amazonaws.com', [`${prefix}:sub`]: subs.length === 1 ? subs[0] : subs },
          },
        },
      ],
    },
    null,
    2,
  );
}

type SdkError = Error & { $metadata?: { httpStatusCode?: number }; Code?: string };

async function failure(p: Promise<unknown>): Promise<SdkError> {
  try {
    await p;
  } catch (e) {
    return e as SdkError;
  }
  throw new Error('expected the call to fail');
}

let emu: AwsEmulator;
let iam: IAMClient;
let sts: STSClient;
let eks: EKSClient;

beforeAll(async () => {
  emu = await startAwsEmulator();
  const common = {
    region: 'us-west-2',
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
    maxAttempts: 1,
  };
  iam = new IAMClient({ ...common, endpoint: emu.iamUrl });
  sts = new STSClient({ ...common, endpoint: emu.stsUrl });
  eks = new EKSClient({ ...common, endpoint: emu.eksUrl });
});

afterAll(async () => {
  iam?.destroy();
  sts?.destroy();
  eks?.destroy();
  await emu?.close();
});

beforeEach(() => emu.reset());

describe('IAM OpenID Connect providers', () => {
  it('creates a provider and reads it back with the Url stripped of its scheme', async () => {
    const created = await iam.send(
      new CreateOpenIDConnectProviderCommand({
        Url: ISSUER,
        ClientIDList: ['sts.amazonaws.com'],
        Tags: [{ Key: 'managed-by', Value: 'wid' }],
      }),
    );
    expect(created.OpenIDConnectProviderArn).toBe(PROVIDER_ARN);
    expect(created.Tags).toEqual([{ Key: 'managed-by', Value: 'wid' }]);

    const got = await iam.send(new GetOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: PROVIDER_ARN }));
    expect(got.Url).toBe(HOST_PATH);
    expect(got.ClientIDList).toEqual(['sts.amazonaws.com']);
    // No thumbprint was sent; IAM fills one in, so the list is not empty.
    expect(got.ThumbprintList).toHaveLength(1);
    expect(got.ThumbprintList?.[0]).toMatch(/^[0-9a-f]{40}$/);
    expect(got.CreateDate).toBeInstanceOf(Date);
    expect(got.Tags).toEqual([{ Key: 'managed-by', Value: 'wid' }]);

    const list = await iam.send(new ListOpenIDConnectProvidersCommand({}));
    expect(list.OpenIDConnectProviderList).toEqual([{ Arn: PROVIDER_ARN }]);
    expect(emu.getOidcProvider(PROVIDER_ARN)).toMatchObject({ url: ISSUER, clientIds: ['sts.amazonaws.com'], tags: { 'managed-by': 'wid' } });
  });

  it('answers EntityAlreadyExists for the same host and path, and validates the URL', async () => {
    emu.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'] });
    const dup = await failure(iam.send(new CreateOpenIDConnectProviderCommand({ Url: ISSUER })));
    expect(dup.name).toBe('EntityAlreadyExistsException');
    expect(dup.message).toBe(`Provider with url ${ISSUER} already exists.`);
    expect(dup.$metadata?.httpStatusCode).toBe(409);

    const http = await failure(iam.send(new CreateOpenIDConnectProviderCommand({ Url: 'http://example.com' })));
    expect(http.name).toBe('InvalidInputException');
    expect(http.message).toBe('Invalid Open ID Connect Provider URL. The URL must begin with https://.');
    const query = await failure(iam.send(new CreateOpenIDConnectProviderCommand({ Url: 'https://example.com/x?a=1' })));
    expect(query.message).toBe('Invalid Open ID Connect Provider URL.');
  });

  it('answers NoSuchEntity for an unknown ARN; adds and removes client ids idempotently; deletes idempotently', async () => {
    const missing = await failure(iam.send(new GetOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: PROVIDER_ARN })));
    expect(missing.name).toBe('NoSuchEntityException');
    expect(missing.message).toBe(`OpenIDConnect Provider not found for arn ${PROVIDER_ARN}`);
    expect(missing.$metadata?.httpStatusCode).toBe(404);

    const arn = emu.seedOidcProvider({ url: ISSUER, tags: { a: '1', b: '2' } });
    await iam.send(new AddClientIDToOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn, ClientID: 'sts.amazonaws.com' }));
    await iam.send(new AddClientIDToOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn, ClientID: 'sts.amazonaws.com' }));
    expect(emu.getOidcProvider(arn)?.clientIds).toEqual(['sts.amazonaws.com']);
    await iam.send(new RemoveClientIDFromOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn, ClientID: 'other' }));
    await iam.send(new RemoveClientIDFromOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn, ClientID: 'sts.amazonaws.com' }));
    expect(emu.getOidcProvider(arn)?.clientIds).toEqual([]);
    // An empty ClientIDList comes back as an empty element, which the SDK reads as [].
    expect((await iam.send(new GetOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn }))).ClientIDList).toEqual([]);

    const tags1 = await iam.send(new ListOpenIDConnectProviderTagsCommand({ OpenIDConnectProviderArn: arn, MaxItems: 1 }));
    expect(tags1).toMatchObject({ Tags: [{ Key: 'a', Value: '1' }], IsTruncated: true });
    const tags2 = await iam.send(new ListOpenIDConnectProviderTagsCommand({ OpenIDConnectProviderArn: arn, Marker: tags1.Marker }));
    expect(tags2).toMatchObject({ Tags: [{ Key: 'b', Value: '2' }], IsTruncated: false });
    expect(tags2.Marker).toBeUndefined();

    await iam.send(new DeleteOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn }));
    await iam.send(new DeleteOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn }));
    expect(emu.getOidcProvider(arn)).toBeUndefined();
  });
});

describe('IAM roles', () => {
  it('creates a role; GetRole returns the trust policy URL-encoded, which the SDK does not decode', async () => {
    emu.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'] });
    const doc = trustPolicy();
    const created = await iam.send(
      new CreateRoleCommand({
        RoleName: 'wid-default-sa-1',
        AssumeRolePolicyDocument: doc,
        Description: 'IAM role for Kubernetes ServiceAccount default/sa-1 [managed by wid]',
        Tags: [{ Key: 'managed-by', Value: 'wid' }],
      }),
    );
    expect(created.Role?.Arn).toBe(`arn:aws:iam::${ACCOUNT}:role/wid-default-sa-1`);
    expect(created.Role?.RoleId).toMatch(/^AROA[A-Z0-9]{17}$/);

    const got = await iam.send(new GetRoleCommand({ RoleName: 'wid-default-sa-1' }));
    const encoded = got.Role?.AssumeRolePolicyDocument ?? '';
    expect(encoded).toBe(encodeURIComponent(doc));
    expect(encoded.startsWith('%7B')).toBe(true);
    expect(decodeURIComponent(encoded)).toBe(doc);
    expect(got.Role).toMatchObject({
      RoleName: 'wid-default-sa-1',
      Path: '/',
      MaxSessionDuration: 3600,
      Description: 'IAM role for Kubernetes ServiceAccount default/sa-1 [managed by wid]',
      Tags: [{ Key: 'managed-by', Value: 'wid' }],
    });
    expect(got.Role?.CreateDate).toBeInstanceOf(Date);

    expect(emu.getRole('wid-default-sa-1')?.trustPolicy.Statement[0].Principal.Federated).toBe(PROVIDER_ARN);
  });

  it('answers EntityAlreadyExists for a second CreateRole (names are case-insensitive) and NoSuchEntity for a missing role', async () => {
    emu.seedRole({ name: 'r1', trustPolicy: { Version: '2012-10-17', Statement: [] } });
    const dup = await failure(iam.send(new CreateRoleCommand({ RoleName: 'R1', AssumeRolePolicyDocument: trustPolicy() })));
    expect(dup.name).toBe('EntityAlreadyExistsException');
    expect(dup.message).toBe('Role with name R1 already exists.');
    expect(dup.$metadata?.httpStatusCode).toBe(409);

    const missing = await failure(iam.send(new GetRoleCommand({ RoleName: 'nope' })));
    expect(missing.name).toBe('NoSuchEntityException');
    expect(missing.message).toBe('The role with name nope cannot be found.');
    expect(missing.$metadata?.httpStatusCode).toBe(404);
  });

  it('refuses malformed trust policies the way IAM does', async () => {
    emu.seedOidcProvider({ url: ISSUER });
    const scheme = await failure(
      iam.send(new CreateRoleCommand({ RoleName: 'r', AssumeRolePolicyDocument: trustPolicy({ keyPrefix: ISSUER }) })),
    );
    expect(scheme.name).toBe('MalformedPolicyDocumentException');
    expect(scheme.message).toBe('Condition can contain only one colon.');
    expect(scheme.$metadata?.httpStatusCode).toBe(400);

    const otherProvider = `arn:aws:iam::${ACCOUNT}:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/0000`;
    const principal = await failure(
      iam.send(new CreateRoleCommand({ RoleName: 'r', AssumeRolePolicyDocument: trustPolicy({ provider: otherProvider }) })),
    );
    expect(principal.name).toBe('MalformedPolicyDocumentException');
    expect(principal.message).toBe(`Invalid principal in policy: "Federated":"${otherProvider}"`);

    const syntax = await failure(iam.send(new CreateRoleCommand({ RoleName: 'r', AssumeRolePolicyDocument: '{"Version":' })));
    expect(syntax.message).toBe('Syntax errors in policy.');
    expect(emu.getRole('r')).toBeUndefined();
  });

  it('enforces the 2048-character trust policy quota, counting without whitespace', async () => {
    emu.seedOidcProvider({ url: ISSUER });
    const subs = (n: number) => Array.from({ length: n }, (_, i) => `system:serviceaccount:default:sa-${i}`);
    // Find a policy just over the quota, and check the one just under it is accepted although its
    // pretty-printed text is longer than 2048.
    let n = 1;
    while (trustPolicy({ subs: subs(n + 1) }).replace(/\s/g, '').length <= 2048) n++;
    const under = trustPolicy({ subs: subs(n) });
    expect(under.length).toBeGreaterThan(2048);
    await iam.send(new CreateRoleCommand({ RoleName: 'under', AssumeRolePolicyDocument: under }));

    const over = await failure(iam.send(new CreateRoleCommand({ RoleName: 'over', AssumeRolePolicyDocument: trustPolicy({ subs: subs(n + 1) }) })));
    expect(over.name).toBe('LimitExceededException');
    expect(over.message).toBe('Cannot exceed quota for ACLSizePerRole: 2048');
    expect(over.$metadata?.httpStatusCode).toBe(409);

    const update = await failure(iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: 'under', PolicyDocument: trustPolicy({ subs: subs(n + 1) }) })));
    expect(update.name).toBe('LimitExceededException');
  });

  it('UpdateAssumeRolePolicy replaces the document after validating it', async () => {
    emu.seedOidcProvider({ url: ISSUER });
    emu.seedRole({ name: 'r', trustPolicy: trustPolicy() });
    const bad = await failure(iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: 'r', PolicyDocument: trustPolicy({ keyPrefix: ISSUER }) })));
    expect(bad.name).toBe('MalformedPolicyDocumentException');
    const next = trustPolicy({ subs: ['system:serviceaccount:default:sa-1', 'system:serviceaccount:default:sa-2'] });
    await iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: 'r', PolicyDocument: next }));
    expect(emu.getRole('r')?.trustPolicyText).toBe(next);
  });

  it('tags and untags roles, with XML-escaped values surviving the round trip', async () => {
    emu.seedRole({ name: 'r', trustPolicy: '{}', tags: { 'managed-by': 'wid' } });
    const tricky = `a<b>&"c'd`;
    await iam.send(new TagRoleCommand({ RoleName: 'r', Tags: [{ Key: 'odd', Value: tricky }, { Key: 'MANAGED-BY', Value: 'me' }] }));
    const tags = await iam.send(new ListRoleTagsCommand({ RoleName: 'r' }));
    expect(tags.Tags).toEqual([
      { Key: 'odd', Value: tricky },
      { Key: 'MANAGED-BY', Value: 'me' },
    ]);
    expect(tags.IsTruncated).toBe(false);
    await iam.send(new UntagRoleCommand({ RoleName: 'r', TagKeys: ['odd'] }));
    expect(emu.getRole('r')?.tags).toEqual({ 'MANAGED-BY': 'me' });

    const dup = await failure(iam.send(new TagRoleCommand({ RoleName: 'r', Tags: [{ Key: 'k', Value: '1' }, { Key: 'K', Value: '2' }] })));
    expect(dup.name).toBe('InvalidInputException');
  });

  it('ListRoles pages with MaxItems/Marker/IsTruncated, URL-encodes documents, and works with the SDK paginator', async () => {
    for (const name of ['e', 'b', 'd', 'a', 'c']) emu.seedRole({ name, trustPolicy: { Version: '2012-10-17', Statement: [], Name: name } });
    const first = await iam.send(new ListRolesCommand({ MaxItems: 2 }));
    expect(first.Roles?.map((r) => r.RoleName)).toEqual(['a', 'b']);
    expect(first.IsTruncated).toBe(true);
    expect(first.Marker).toBeTruthy();
    expect(first.Roles?.[0]?.AssumeRolePolicyDocument).toBe(encodeURIComponent('{"Version":"2012-10-17","Statement":[],"Name":"a"}'));
    // ListRoles does not return tags.
    expect(first.Roles?.[0]?.Tags).toBeUndefined();

    const second = await iam.send(new ListRolesCommand({ MaxItems: 2, Marker: first.Marker }));
    expect(second.Roles?.map((r) => r.RoleName)).toEqual(['c', 'd']);

    const names: string[] = [];
    let pages = 0;
    for await (const page of paginateListRoles({ client: iam, pageSize: 2 }, {})) {
      pages++;
      names.push(...(page.Roles ?? []).map((r) => r.RoleName ?? ''));
    }
    expect(pages).toBe(3);
    expect(names).toEqual(['a', 'b', 'c', 'd', 'e']);

    // One-role page: a single <member> still parses as a list.
    const single = await iam.send(new ListRolesCommand({ MaxItems: 1, Marker: second.Marker }));
    expect(single.Roles?.map((r) => r.RoleName)).toEqual(['e']);
    expect(single.IsTruncated).toBe(false);
  });
});

describe('IAM managed policy attachments', () => {
  it('attaches, lists with paging, detaches; refuses unknown policies and the 11th attachment', async () => {
    emu.seedRole({ name: 'r', trustPolicy: '{}' });
    const custom = `arn:aws:iam::${ACCOUNT}:policy/team/custom-read`;

    const unknown = await failure(iam.send(new AttachRolePolicyCommand({ RoleName: 'r', PolicyArn: custom })));
    expect(unknown.name).toBe('NoSuchEntityException');
    expect(unknown.message).toBe(`Policy ${custom} does not exist or is not attachable.`);
    emu.seedPolicy(custom);

    await iam.send(new AttachRolePolicyCommand({ RoleName: 'r', PolicyArn: S3_RO }));
    await iam.send(new AttachRolePolicyCommand({ RoleName: 'r', PolicyArn: S3_RO })); // no-op
    await iam.send(new AttachRolePolicyCommand({ RoleName: 'r', PolicyArn: 'arn:aws:iam::aws:policy/ReadOnlyAccess' }));
    await iam.send(new AttachRolePolicyCommand({ RoleName: 'r', PolicyArn: custom }));

    const p1 = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: 'r', MaxItems: 2 }));
    expect(p1.AttachedPolicies).toEqual([
      { PolicyName: 'AmazonS3ReadOnlyAccess', PolicyArn: S3_RO },
      { PolicyName: 'ReadOnlyAccess', PolicyArn: 'arn:aws:iam::aws:policy/ReadOnlyAccess' },
    ]);
    expect(p1.IsTruncated).toBe(true);
    const p2 = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: 'r', MaxItems: 2, Marker: p1.Marker }));
    expect(p2.AttachedPolicies).toEqual([{ PolicyName: 'custom-read', PolicyArn: custom }]);
    expect(p2.IsTruncated).toBe(false);
    const byPath = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: 'r', PathPrefix: '/team/' }));
    expect(byPath.AttachedPolicies?.map((p) => p.PolicyName)).toEqual(['custom-read']);

    await iam.send(new DetachRolePolicyCommand({ RoleName: 'r', PolicyArn: custom }));
    const notAttached = await failure(iam.send(new DetachRolePolicyCommand({ RoleName: 'r', PolicyArn: custom })));
    expect(notAttached.name).toBe('NoSuchEntityException');
    expect(emu.getRole('r')?.attachedPolicies).toEqual([S3_RO, 'arn:aws:iam::aws:policy/ReadOnlyAccess']);

    const more = Array.from({ length: 9 }, (_, i) => `arn:aws:iam::${ACCOUNT}:policy/p${i}`);
    more.forEach((arn) => emu.seedPolicy(arn));
    for (const arn of more.slice(0, 8)) await iam.send(new AttachRolePolicyCommand({ RoleName: 'r', PolicyArn: arn }));
    const eleventh = await failure(iam.send(new AttachRolePolicyCommand({ RoleName: 'r', PolicyArn: more[8] })));
    expect(eleventh.name).toBe('LimitExceededException');
    expect(eleventh.message).toBe('Cannot exceed quota for PoliciesPerRole: 10');
  });

  it('GetPolicy finds AWS managed and seeded policies, NoSuchEntity otherwise', async () => {
    emu.seedRole({ name: 'r', trustPolicy: '{}', attachedPolicies: [S3_RO] });
    const got = await iam.send(new GetPolicyCommand({ PolicyArn: S3_RO }));
    expect(got.Policy).toMatchObject({ PolicyName: 'AmazonS3ReadOnlyAccess', Arn: S3_RO, Path: '/', AttachmentCount: 1, IsAttachable: true });
    expect(got.Policy?.PolicyId).toMatch(/^ANPA[A-Z0-9]{17}$/);
    const ebs = await iam.send(new GetPolicyCommand({ PolicyArn: 'arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy' }));
    expect(ebs.Policy).toMatchObject({ PolicyName: 'AmazonEBSCSIDriverPolicy', Path: '/service-role/', AttachmentCount: 0 });

    const custom = `arn:aws:iam::${ACCOUNT}:policy/custom`;
    const missing = await failure(iam.send(new GetPolicyCommand({ PolicyArn: custom })));
    expect(missing.name).toBe('NoSuchEntityException');
    expect(missing.Code).toBe('NoSuchEntity');
    expect(missing.message).toBe(`Policy ${custom} was not found.`);
    emu.seedPolicy(custom);
    expect((await iam.send(new GetPolicyCommand({ PolicyArn: custom }))).Policy?.PolicyName).toBe('custom');
  });

  it('DeleteRole answers DeleteConflict while policies are attached', async () => {
    emu.seedRole({ name: 'r', trustPolicy: '{}', attachedPolicies: [S3_RO] });
    const conflict = await failure(iam.send(new DeleteRoleCommand({ RoleName: 'r' })));
    expect(conflict.name).toBe('DeleteConflictException');
    expect(conflict.message).toBe('Cannot delete entity, must detach all policies first.');
    expect(conflict.$metadata?.httpStatusCode).toBe(409);

    await iam.send(new DetachRolePolicyCommand({ RoleName: 'r', PolicyArn: S3_RO }));
    await iam.send(new DeleteRoleCommand({ RoleName: 'r' }));
    expect(emu.getRole('r')).toBeUndefined();
  });
});

describe('EKS and STS', () => {
  it('DescribeCluster finds a cluster in its region only', async () => {
    emu.seedCluster({ name: 'demo', region: 'us-west-2', issuer: ISSUER });
    emu.seedCluster({ name: 'elsewhere', region: 'eu-west-1', issuer: ISSUER });
    const { cluster } = await eks.send(new DescribeClusterCommand({ name: 'demo' }));
    expect(cluster).toMatchObject({
      name: 'demo',
      arn: `arn:aws:eks:us-west-2:${ACCOUNT}:cluster/demo`,
      status: 'ACTIVE',
      identity: { oidc: { issuer: ISSUER } },
      kubernetesNetworkConfig: { ipFamily: 'ipv4' },
    });
    expect(cluster?.createdAt).toBeInstanceOf(Date);
    expect(cluster?.endpoint).toBe('https://A39A2842863C47208955D753DE205E6E.gr7.us-west-2.eks.amazonaws.com');

    const notHere = await failure(eks.send(new DescribeClusterCommand({ name: 'elsewhere' })));
    expect(notHere.name).toBe('ResourceNotFoundException');
    expect(notHere.message).toBe('No cluster found for name: elsewhere.');
    expect(notHere.$metadata?.httpStatusCode).toBe(404);

    expect((await eks.send(new ListClustersCommand({}))).clusters).toEqual(['demo']);
  });

  it('DescribeCluster leaves identity out for a cluster without an issuer', async () => {
    emu.seedCluster({ name: 'old', region: 'us-west-2', status: 'CREATING' });
    const { cluster } = await eks.send(new DescribeClusterCommand({ name: 'old' }));
    expect(cluster?.status).toBe('CREATING');
    expect(cluster?.identity).toBeUndefined();
    expect(cluster?.endpoint).toBeUndefined();
  });

  it('GetCallerIdentity answers for the configured account', async () => {
    const who = await sts.send(new GetCallerIdentityCommand({}));
    expect(who).toMatchObject({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/wid-test`, UserId: 'AIDAEXAMPLE' });
  });
});

describe('faults, auth and the request log', () => {
  it('failNext throttles the next call only; with maxAttempts 1 the SDK surfaces Throttling', async () => {
    emu.seedRole({ name: 'r', trustPolicy: '{}' });
    emu.faults.failNext('GetRole', { status: 400, code: 'Throttling', message: 'Rate exceeded' });
    const throttled = await failure(iam.send(new GetRoleCommand({ RoleName: 'r' })));
    expect(throttled.name).toBe('Throttling');
    expect(throttled.message).toBe('Rate exceeded');
    expect(throttled.$metadata?.httpStatusCode).toBe(400);
    await iam.send(new GetRoleCommand({ RoleName: 'r' }));

    emu.faults.failNext('DescribeCluster', { status: 429, code: 'ThrottlingException', message: 'Rate exceeded' }, 2);
    emu.seedCluster({ name: 'demo', region: 'us-west-2', issuer: ISSUER });
    expect((await failure(eks.send(new DescribeClusterCommand({ name: 'demo' })))).name).toBe('ThrottlingException');
    expect((await failure(eks.send(new DescribeClusterCommand({ name: 'demo' })))).name).toBe('ThrottlingException');
    await eks.send(new DescribeClusterCommand({ name: 'demo' }));
  });

  it('a status-0 fault drops the connection before the call is handled; dropAnswerNext loses the answer of a handled call', async () => {
    emu.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'] });
    // The request is lost: a network error (not a service error), nothing changed, logged with status 0.
    emu.faults.failNext('CreateRole', { status: 0, code: '', message: '' });
    const dropped = await failure(iam.send(new CreateRoleCommand({ RoleName: 'r', AssumeRolePolicyDocument: trustPolicy() })));
    expect(dropped.$metadata?.httpStatusCode).toBeUndefined();
    expect([(dropped as { code?: string }).code, dropped.message]).toEqual(['ECONNRESET', 'socket hang up']);
    expect(emu.getRole('r')).toBeUndefined();
    expect(emu.log.map((r) => [r.action, r.status])).toEqual([['CreateRole', 0]]);

    // The answer is lost: the role was created, so a resend is told it already exists.
    emu.faults.dropAnswerNext('iam:CreateRole');
    const lost = await failure(iam.send(new CreateRoleCommand({ RoleName: 'r', AssumeRolePolicyDocument: trustPolicy() })));
    expect((lost as { code?: string }).code).toBe('ECONNRESET');
    expect(emu.getRole('r')?.trustPolicyText).toBe(trustPolicy());
    expect((await failure(iam.send(new CreateRoleCommand({ RoleName: 'r', AssumeRolePolicyDocument: trustPolicy() })))).Code).toBe('EntityAlreadyExists');
    expect(emu.log.map((r) => [r.action, r.status])).toEqual([['CreateRole', 0], ['CreateRole', 0], ['CreateRole', 409]]);

    // The SDK's own retries (maxAttempts > 1) treat a dropped connection as transient and resend.
    const retrying = new IAMClient({ region: 'us-west-2', endpoint: emu.iamUrl, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' }, maxAttempts: 3 });
    emu.faults.failNext('GetRole', { status: 0, code: '', message: '' }, 2);
    expect((await retrying.send(new GetRoleCommand({ RoleName: 'r' }))).Role?.RoleName).toBe('r');
    retrying.destroy();
    expect(emu.log.slice(-3).map((r) => r.status)).toEqual([0, 0, 200]);

    // EKS too; clear() drops pending answer drops.
    emu.seedCluster({ name: 'demo', region: 'us-west-2', issuer: ISSUER });
    emu.faults.failNext('eks:DescribeCluster', { status: 0, code: '', message: '' });
    expect((await failure(eks.send(new DescribeClusterCommand({ name: 'demo' }))) as { code?: string }).code).toBe('ECONNRESET');
    emu.faults.dropAnswerNext('DescribeCluster');
    emu.faults.clear();
    expect((await eks.send(new DescribeClusterCommand({ name: 'demo' }))).cluster?.name).toBe('demo');
  });

  it('deny answers AccessDenied until cleared', async () => {
    emu.faults.deny('CreateRole');
    const denied = await failure(iam.send(new CreateRoleCommand({ RoleName: 'r', AssumeRolePolicyDocument: '{}' })));
    expect(denied.name).toBe('AccessDenied');
    expect(denied.$metadata?.httpStatusCode).toBe(403);
    expect(denied.message).toContain(
      `User: arn:aws:iam::${ACCOUNT}:user/wid-test is not authorized to perform: iam:CreateRole on resource: arn:aws:iam::${ACCOUNT}:role/r`,
    );
    emu.faults.deny('eks:DescribeCluster');
    expect((await failure(eks.send(new DescribeClusterCommand({ name: 'demo' })))).name).toBe('AccessDeniedException');
    emu.faults.clear();
    await iam.send(new CreateRoleCommand({ RoleName: 'r', AssumeRolePolicyDocument: '{"Version":"2012-10-17","Statement":[]}' }));
  });

  it('adds latency to every response', async () => {
    emu.faults.latencyMs = 40;
    const start = Date.now();
    await sts.send(new GetCallerIdentityCommand({}));
    expect(Date.now() - start).toBeGreaterThanOrEqual(35);
  });

  it('refuses requests without a SigV4 Authorization header, and clients pointed at the wrong listener', async () => {
    const iamRes = await fetch(`${emu.iamUrl}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=ListRoles&Version=2010-05-08',
    });
    expect(iamRes.status).toBe(403);
    const body = await iamRes.text();
    expect(body).toContain('<Code>MissingAuthenticationToken</Code>');
    expect(body).toContain('<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">');

    const eksRes = await fetch(`${emu.eksUrl}/clusters/demo`);
    expect(eksRes.status).toBe(403);
    expect(eksRes.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
    expect(await eksRes.json()).toEqual({ message: 'Missing Authentication Token' });

    const crossed = new IAMClient({
      region: 'us-west-2',
      endpoint: emu.stsUrl,
      credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
      maxAttempts: 1,
    });
    const wrong = await failure(crossed.send(new ListRolesCommand({})));
    crossed.destroy();
    expect(wrong.name).toBe('SignatureDoesNotMatch');
  });

  it('records every request in order; writes() keeps the state-changing ones', async () => {
    emu.seedCluster({ name: 'demo', region: 'us-west-2', issuer: ISSUER });
    await eks.send(new DescribeClusterCommand({ name: 'demo' }));
    await failure(iam.send(new GetOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: PROVIDER_ARN })));
    await iam.send(new CreateOpenIDConnectProviderCommand({ Url: ISSUER, ClientIDList: ['sts.amazonaws.com'] }));
    await iam.send(new CreateRoleCommand({ RoleName: 'r', AssumeRolePolicyDocument: trustPolicy() }));
    await failure(iam.send(new CreateRoleCommand({ RoleName: 'r', AssumeRolePolicyDocument: trustPolicy() })));
    await iam.send(new AttachRolePolicyCommand({ RoleName: 'r', PolicyArn: S3_RO }));
    await sts.send(new GetCallerIdentityCommand({}));

    expect(emu.log.map((r) => [r.service, r.action, r.status])).toEqual([
      ['eks', 'DescribeCluster', 200],
      ['iam', 'GetOpenIDConnectProvider', 404],
      ['iam', 'CreateOpenIDConnectProvider', 200],
      ['iam', 'CreateRole', 200],
      ['iam', 'CreateRole', 409],
      ['iam', 'AttachRolePolicy', 200],
      ['sts', 'GetCallerIdentity', 200],
    ]);
    expect(emu.log[0]?.params).toEqual({ name: 'demo', region: 'us-west-2' });
    expect(emu.log[2]?.params).toEqual({ Url: ISSUER, 'ClientIDList.member.1': 'sts.amazonaws.com' });
    expect(emu.writes().map((r) => r.action)).toEqual(['CreateOpenIDConnectProvider', 'CreateRole', 'CreateRole', 'AttachRolePolicy']);
    expect(emu.writes().every((r) => r.write)).toBe(true);
  });
});
