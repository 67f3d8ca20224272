import { describe, expect, it } from 'vitest';
import type { EksRequest } from '../../src/core/request.js';
import { buildAnnotations, buildOidcProvider, buildTrustPolicy, injectPod, oidcProviderArn } from '../../src/providers/eks/build.js';

function req(over: Partial<EksRequest> = {}): EksRequest {
  return {
    provider: 'eks',
    namespace: 'default',
    serviceAccount: 'sa-1',
    inject: false,
    issuer: 'https://oidc.eks.us-west-2.amazonaws.com/id/A39A2842863C47208955D753DE205E6E',
    accountId: '456123987123',
    partition: 'aws',
    roleName: 'r',
    policyArns: [],
    audience: 'sts.amazonaws.com',
    ...over,
  };
}

/** eksctl pkg/cfn/builder/iam_test.go, expectedServiceAccountAssumeRolePolicyDocument, verbatim. */
const EKSCTL_FIXTURE = `{
  "Statement": [{
    "Action": ["sts:AssumeRoleWithWebIdentity"],
    "Condition": {
      "StringEquals": {
        "oidc.eks.us-west-2.amazonaws.com/id/A39A2842863C47208955D753DE205E6E:aud": "sts.amazonaws.com",
        "oidc.eks.us-west-2.amazonaws.com/id/A39A2842863C47208955D753DE205E6E:sub": "system:serviceaccount:default:sa-1"
      }
    },
    "Effect": "Allow",
    "Principal": {"Federated": "arn:aws:iam::456123987123:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/A39A2842863C47208955D753DE205E6E"}
  }],
  "Version": "2012-10-17"
}`;

describe('eks trust policy', () => {
  it('is eksctl\'s document for the same inputs, key order included', () => {
    expect(JSON.stringify(buildTrustPolicy(req()))).toBe(JSON.stringify(JSON.parse(EKSCTL_FIXTURE)));
  });

  it('condition keys carry no scheme (IAM: "Condition can contain only one colon")', () => {
    const keys = Object.keys((buildTrustPolicy(req()).Statement as { Condition: { StringEquals: object } }[])[0]!.Condition.StringEquals);
    for (const k of keys) expect(k.split(':')).toHaveLength(2);
  });

  it('uses the partition in the federated principal', () => {
    const p = buildTrustPolicy(req({ partition: 'aws-us-gov' }));
    expect(JSON.stringify(p)).toContain('"Federated":"arn:aws-us-gov:iam::456123987123:oidc-provider/');
  });

  it('puts a custom audience in the condition and the provider client list', () => {
    const r = req({ audience: 'my-aud' });
    expect(JSON.stringify(buildTrustPolicy(r))).toContain(':aud":"my-aud"');
    expect(buildOidcProvider(r)).toMatchObject({ Url: r.issuer, ClientIDList: ['my-aud'] });
  });

  it('keeps the issuer verbatim in the provider URL and ARN', () => {
    const r = req({ issuer: 'https://issuer.example.com/clusters/a' });
    expect(buildOidcProvider(r).Url).toBe('https://issuer.example.com/clusters/a');
    expect(oidcProviderArn(r)).toBe('arn:aws:iam::456123987123:oidc-provider/issuer.example.com/clusters/a');
  });
});

describe('eks annotations', () => {
  it('holds only role-arn by default', () => {
    expect(buildAnnotations(req({ roleName: 's3' }))).toEqual({ 'eks.amazonaws.com/role-arn': 'arn:aws:iam::456123987123:role/s3' });
  });

  it('adds audience, sts-regional-endpoints and token-expiration when set', () => {
    expect(buildAnnotations(req({ audience: 'a', stsRegionalEndpoints: false, tokenExpiration: 3600 }))).toEqual({
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::456123987123:role/r',
      'eks.amazonaws.com/audience': 'a',
      'eks.amazonaws.com/sts-regional-endpoints': 'false',
      'eks.amazonaws.com/token-expiration': '3600',
    });
  });
});

describe('eks --inject (the pod identity webhook\'s mutation)', () => {
  const pod = () => ({
    apiVersion: 'v1',
    kind: 'Pod',
    spec: {
      initContainers: [{ name: 'init', image: 'i' }],
      containers: [
        { name: 'app', image: 'a', env: [{ name: 'AWS_ROLE_ARN', value: 'mine' }] },
        { name: 'full', image: 'f', env: [{ name: 'AWS_ROLE_ARN', value: 'x' }, { name: 'AWS_REGION', value: 'y' }, { name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'z' }] },
      ],
      volumes: [{ name: 'data', emptyDir: {} }],
    },
  });

  it('adds env and mounts per container, keeps existing env, prepends the volume', () => {
    const p = pod();
    injectPod(p, req({ region: 'eu-west-1' }));
    const [init, app, full] = [p.spec.initContainers[0]!, p.spec.containers[0]!, p.spec.containers[1]!] as Record<string, unknown>[];
    expect(init!.env).toEqual([
      { name: 'AWS_DEFAULT_REGION', value: 'eu-west-1' },
      { name: 'AWS_REGION', value: 'eu-west-1' },
      { name: 'AWS_ROLE_ARN', value: 'arn:aws:iam::456123987123:role/r' },
      { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token' },
    ]);
    // AWS_ROLE_ARN present: neither web identity variable is added (the webhook adds both or none).
    expect(app!.env).toEqual([{ name: 'AWS_ROLE_ARN', value: 'mine' }, { name: 'AWS_DEFAULT_REGION', value: 'eu-west-1' }, { name: 'AWS_REGION', value: 'eu-west-1' }]);
    expect(app!.volumeMounts).toEqual([{ name: 'aws-iam-token', readOnly: true, mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount' }]);
    // All three groups already set: the container is left untouched, without a mount.
    expect(full!.volumeMounts).toBeUndefined();
    expect(p.spec.volumes.map((v) => v.name)).toEqual(['aws-iam-token', 'data']);
    expect(p.spec.volumes[0]).toEqual({
      name: 'aws-iam-token',
      projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 86400, path: 'token' } }] },
    });
  });

  it('is idempotent', () => {
    const p = pod();
    injectPod(p, req());
    const once = JSON.stringify(p);
    injectPod(p, req());
    expect(JSON.stringify(p)).toBe(once);
  });
});
