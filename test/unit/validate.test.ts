import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import * as v from '../../src/core/validate.js';

const SUB = '22222222-2222-2222-2222-222222222222';

/** [validator, values it accepts, values it rejects] */
const table: [string, (x: string) => unknown, string[], string[]][] = [
  ['namespace', (x) => v.namespace('-n', x), ['default', 'kube-system', 'a', 'a'.repeat(63)], ['', 'A', 'a_b', '-a', 'a-', 'a.b', 'a'.repeat(64)]],
  ['serviceAccountName', (x) => v.serviceAccountName('--sa', x), ['s3-access-sa', 'a.b.c', 'x'.repeat(253)], ['', 'S3', 'a..b', '.a', 'a_b', 'x'.repeat(254)]],
  [
    'issuer',
    (x) => v.issuer('--issuer', x),
    ['https://oidc.eks.us-west-2.amazonaws.com/id/ABC', 'https://eastus.oic.prod-aks.azure.com/t/i/', 'https://container.googleapis.com/v1/projects/p/locations/l/clusters/c', 'https://issuer.example.com:8443'],
    ['http://x.example', 'https://x.example?x=1', 'https://x.example/#a', 'x.example', 'https://user:pw@x.example', 'https://x.example ', ' https://x.example', 'ftp://x.example'],
  ],
  ['awsAccountId', (x) => v.awsAccountId('--account-id', x), ['111122223333', '000000000000'], ['11112222333', '1111222233334', '11112222333a']],
  ['iamRoleName', (x) => v.iamRoleName('--role-name', x), ['s3-access-role', 'a+b=c,d.e@f_g', 'r'.repeat(64)], ['', 'a b', 'a/b', 'r'.repeat(65)]],
  ['tokenExpiration', (x) => v.tokenExpiration('--token-expiration', x), ['600', '3600', '86400'], ['599', '86401', '-1', '3600s', '']],
  ['awsRegion', (x) => v.awsRegion('--region', x), ['us-west-2', 'cn-north-1', 'us-gov-west-1', 'ap-southeast-5'], ['us-west', 'US-WEST-2', 'uswest2']],
  ['guid', (x) => v.guid('--client-id', x), [SUB, 'ACDD72A7-3385-48EF-BD42-F606FBA81AE7'], ['', '1234', `${SUB}0`, `{${SUB}}`]],
  ['resourceGroup', (x) => v.resourceGroup('-g', x), ['my-rg', 'MC_rg_cluster_westeurope', 'rg.(1)'], ['', 'rg.', 'a/b', 'r'.repeat(91)]],
  ['identityName', (x) => v.identityName('--identity', x), ['my-id', 'id_1'], ['ab', '-ab', 'a.b', 'x'.repeat(129)]],
  ['azureScope', (x) => v.azureScope('--scope', x), [`/subscriptions/${SUB}`, `/subscriptions/${SUB}/resourceGroups/rg`, `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv`, '/providers/Microsoft.Management/managementGroups/mg'], ['/', 'subscriptions/x', `/subscriptions/${SUB}/`, '/subscriptions/prod/resourceGroups/rg']],
  ['azureRole', (x) => v.azureRole('--role', x), ['Reader', 'Storage Blob Data Reader', SUB, `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${SUB}`], ['', ' Reader', '/providers/Microsoft.Authorization/roleDefinitions/x']],
  ['gcpProjectId', (x) => v.gcpProjectId('--project', x), ['my-project', 'abcdef', `a${'b'.repeat(29)}`], ['abcde', 'My-project', '1project', 'project-', `a${'b'.repeat(30)}`]],
  ['gcpRole', (x) => v.gcpRole('--role', x), ['roles/storage.objectViewer', 'projects/my-project/roles/custom_1', 'organizations/123/roles/x.y'], ['storage.admin', 'roles/', 'role/viewer']],
  ['workloadPool', (x) => v.workloadPool('--workload-pool', x), ['my-project.svc.id.goog'], ['my-project', 'my-project.svc.id.goog.', 'x.svc.id.goog']],
  ['gcpProjectNumber', (x) => v.gcpProjectNumber('--project-number', x), ['123456789012'], ['0123456', 'abc', '12']],
];

describe('validators', () => {
  for (const [name, fn, good, bad] of table) {
    for (const g of good) it(`${name} accepts ${JSON.stringify(g)}`, () => expect(() => fn(g)).not.toThrow());
    for (const b of bad) {
      it(`${name} rejects ${JSON.stringify(b)}`, () => {
        try {
          fn(b);
          expect.unreachable(`${name} accepted ${JSON.stringify(b)}`);
        } catch (e) {
          expect(e).toBeInstanceOf(UsageError);
          expect((e as UsageError).exitCode).toBe(2);
          expect((e as UsageError).message).toContain(JSON.stringify(b));
        }
      });
    }
  }

  it('completes a short GSA name with the project', () => {
    expect(v.gsa('--gsa', 'my-gsa', 'my-project')).toBe('my-gsa@my-project.iam.gserviceaccount.com');
    expect(v.gsa('--gsa', 'my-gsa@other-proj.iam.gserviceaccount.com', 'my-project')).toBe('my-gsa@other-proj.iam.gserviceaccount.com');
  });

  it('checks a policy ARN against the role\'s partition', () => {
    expect(v.iamPolicyArn('--attach-policy-arn', 'arn:aws-cn:iam::aws:policy/ReadOnlyAccess', 'aws-cn')).toBe('arn:aws-cn:iam::aws:policy/ReadOnlyAccess');
    expect(() => v.iamPolicyArn('--attach-policy-arn', 'arn:aws-cn:iam::aws:policy/ReadOnlyAccess', 'aws')).toThrow(/partition aws-cn/);
  });
});
