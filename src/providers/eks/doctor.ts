/**
 * `wid doctor eks`: from the ServiceAccount's role-arn annotation to an AssumeRoleWithWebIdentity that
 * IAM would allow: the OIDC provider for the token's exact issuer and audience, the role's trust
 * policy evaluated against the token's claims, the webhook, and pods that need a restart.
 */
import { issuerHostPath } from '../../core/naming.js';
import type { KubeApi } from '../../kube/client.js';
import { checkIssuerAndToken, checkWebhook, hasEnv, metaOf, podsOf } from '../../doctor/kube.js';
import type { Checks } from '../../doctor/report.js';
import type { KubeObject } from '../../core/phase.js';
import { AUDIENCE_ANNOTATION, DEFAULT_AUDIENCE, ROLE_ARN_ANNOTATION } from './build.js';
import type { AwsApi } from './client.js';
import { evaluateTrust, statements } from './trust.js';

export async function doctorEks(kube: KubeApi, aws: AwsApi, namespace: string, name: string, sa: KubeObject, checks: Checks): Promise<void> {
  const annotations = metaOf(sa).annotations ?? {};
  const roleArn = annotations[ROLE_ARN_ANNOTATION];
  const arn = roleArn === undefined ? null : /^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role\/(?:.*\/)?([\w+=,.@-]+)$/.exec(roleArn);
  if (!arn) {
    checks.fail('annotation', roleArn === undefined ? `the ServiceAccount has no ${ROLE_ARN_ANNOTATION} annotation` : `${ROLE_ARN_ANNOTATION} is not a role ARN`, {
      expected: 'arn:aws:iam::ACCOUNT:role/NAME',
      found: roleArn ?? '(none)',
      fix: `wid setup eks --cluster CLUSTER --sa ${name} -n ${namespace}`,
    });
    return;
  }
  const [, partition, account, roleName] = arn as unknown as [string, string, string, string];
  const audience = annotations[AUDIENCE_ANNOTATION] ?? DEFAULT_AUDIENCE;
  checks.pass('annotation', `${ROLE_ARN_ANNOTATION} names role ${roleName} in account ${account}`);

  const { claims } = await checkIssuerAndToken(kube, namespace, name, audience, checks);

  if (claims) {
    const hostPath = issuerHostPath(claims.iss);
    const providerArn = `arn:${partition}:iam::${account}:oidc-provider/${hostPath}`;
    const provider = await aws.getOidcProvider(providerArn);
    if (!provider) {
      // The classic mismatch: a provider registered with (or without) a trailing slash is another provider.
      const other = hostPath.endsWith('/') ? hostPath.slice(0, -1) : `${hostPath}/`;
      const near = await aws.getOidcProvider(`arn:${partition}:iam::${account}:oidc-provider/${other}`);
      checks.fail('oidc-provider', near ? `IAM has a provider for ${other}, but tokens say ${hostPath}: the trailing "/" differs` : `IAM has no OIDC provider for the issuer ${claims.iss}`, {
        expected: providerArn,
        found: near ? near.arn : '(none)',
        fix: `wid setup eks --cluster CLUSTER --sa ${name} -n ${namespace} (it registers the issuer exactly as the cluster reports it)`,
      });
    } else if (!provider.clientIds.includes(audience)) {
      checks.fail('oidc-provider', `the OIDC provider does not list the audience ${audience}`, {
        expected: audience,
        found: JSON.stringify(provider.clientIds),
        fix: `aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn ${providerArn} --client-id ${audience}`,
      });
    } else {
      checks.pass('oidc-provider', `IAM trusts the issuer ${claims.iss} for audience ${audience}`);
    }

    const role = await aws.getRole(roleName);
    if (!role) {
      checks.fail('iam-role', `role ${roleName} does not exist`, { expected: roleArn!, fix: `wid setup eks --cluster CLUSTER --sa ${name} -n ${namespace} --role-name ${roleName}` });
    } else {
      const verdict = evaluateTrust(role.trustPolicy, providerArn, hostPath, { sub: claims.sub, aud: [audience] });
      if (verdict.allowed) {
        checks.pass('trust-policy', `the trust policy of ${roleName} lets ${claims.sub} assume it with audience ${audience}`);
      } else if (verdict.statementsForProvider === 0) {
        const trusted = statements(role.trustPolicy)
          .map((s) => (s.Principal as { Federated?: unknown } | undefined)?.Federated)
          .filter((f) => f !== undefined)
          .flat();
        checks.fail('trust-policy', `the trust policy of ${roleName} has no statement for this cluster's OIDC provider`, {
          expected: providerArn,
          found: trusted.length > 0 ? trusted.map(String).join(', ') : '(no Federated principal)',
          fix: `wid setup eks --cluster CLUSTER --sa ${name} -n ${namespace} --role-name ${roleName}`,
        });
      } else {
        checks.fail('trust-policy', `the trust policy of ${roleName} refuses ${claims.sub}`, {
          found: verdict.failures.join('; '),
          expected: `StringEquals ${hostPath}:sub = ${claims.sub} and ${hostPath}:aud = ${audience}`,
          fix: `wid setup eks --cluster CLUSTER --sa ${name} -n ${namespace} --role-name ${roleName}`,
        });
      }
    }
  }

  await checkWebhook(kube, ['pod-identity-webhook'], 'the pod identity webhook (without it pods get no AWS_ROLE_ARN or token)', 'on EKS it is built in; elsewhere install amazon-eks-pod-identity-webhook, or render pods with wid setup eks --inject', checks);

  const pods = await podsOf(kube, namespace, name, checks);
  if (!pods) return;
  const stale = pods.filter((p) => !hasEnv(p, 'AWS_ROLE_ARN') && !hasEnv(p, 'AWS_WEB_IDENTITY_TOKEN_FILE')).map((p) => metaOf(p).name ?? '?');
  if (stale.length > 0) {
    checks.fail('pods', `pod${stale.length === 1 ? '' : 's'} ${stale.join(', ')} run${stale.length === 1 ? 's' : ''} as ${name} without the role (started before it was configured, or not mutated)`, {
      fix: `restart them: kubectl delete pod -n ${namespace} ${stale.join(' ')} (or kubectl rollout restart on their workload)`,
    });
  } else {
    checks.pass('pods', pods.length === 0 ? `no pods run as ${name} yet` : `all ${pods.length} pod${pods.length === 1 ? '' : 's'} running as ${name} carry the role`);
  }
}
