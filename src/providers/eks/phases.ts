/**
 * EKS (IRSA) phases, in order: the IAM OIDC provider must exist before a trust policy may name it
 * (IAM rejects a Federated principal for a missing provider with MalformedPolicyDocument).
 */
import type { Phase, ProviderModule } from '../../core/phase.js';
import { subject } from '../../core/naming.js';
import type { EksRequest } from '../../core/request.js';
import {
  buildAnnotations,
  buildOidcProvider,
  buildPolicyAttachment,
  buildRole,
  injectPod,
  oidcProviderArn,
  roleArn,
} from './build.js';

const phases: Phase<EksRequest>[] = [
  {
    name: 'oidc-provider',
    description: 'IAM OIDC identity provider for the cluster issuer, with the audience as a client id',
    build: (req) => [{ phase: 'oidc-provider', action: 'ensure', resource: oidcProviderArn(req), desired: buildOidcProvider(req) }],
  },
  {
    name: 'iam-role',
    description: 'IAM role whose trust policy admits the ServiceAccount token',
    build: (req) => [{ phase: 'iam-role', action: 'ensure', resource: roleArn(req), desired: buildRole(req) }],
  },
  {
    name: 'policy-attachment',
    description: 'managed policies attached to the role (--attach-policy-arn)',
    build: (req) =>
      req.policyArns.map((arn) => ({ phase: 'policy-attachment', action: 'ensure' as const, resource: arn, desired: buildPolicyAttachment(req, arn) })),
  },
];

export const eks: ProviderModule<EksRequest> = {
  id: 'eks',
  binding: (req) => ({
    issuer: req.issuer,
    namespace: req.namespace,
    serviceAccount: req.serviceAccount,
    subject: subject(req.namespace, req.serviceAccount),
    audience: req.audience,
  }),
  phases,
  manifestValues: (req) => ({ serviceAccountAnnotations: buildAnnotations(req), podLabels: {} }),
  inject: injectPod,
};
