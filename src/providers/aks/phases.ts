/**
 * AKS phases, in order: the identity, then its federated credential (the identity must exist
 * first: "The parent user-assigned identity doesn't exist."), then role assignments for its principal.
 */
import type { Phase, ProviderModule } from '../../core/phase.js';
import { subject } from '../../core/naming.js';
import type { AksRequest } from '../../core/request.js';
import {
  AUDIENCE,
  USE_LABEL,
  buildAnnotations,
  buildFederatedCredential,
  buildManagedIdentity,
  buildRoleAssignment,
  federatedCredentialId,
  identityId,
  injectPod,
  roleAssignmentId,
} from './build.js';

const phases: Phase<AksRequest>[] = [
  {
    name: 'managed-identity',
    description: 'user-assigned managed identity the pods act as',
    build: (req) => [{ phase: 'managed-identity', action: 'ensure', resource: identityId(req), desired: buildManagedIdentity(req) }],
  },
  {
    name: 'federated-credential',
    description: 'federated identity credential trusting the issuer and subject',
    build: (req) => [{ phase: 'federated-credential', action: 'ensure', resource: federatedCredentialId(req), desired: buildFederatedCredential(req) }],
  },
  {
    name: 'role-assignment',
    description: 'Azure role assignments for the identity (--role with --scope)',
    build: (req) =>
      req.roleAssignments.map((ra) => {
        const { desired, pending } = buildRoleAssignment(req, ra);
        return {
          phase: 'role-assignment',
          action: 'ensure' as const,
          resource: roleAssignmentId(req, ra),
          desired,
          ...(Object.keys(pending).length > 0 ? { pending } : {}),
        };
      }),
  },
];

export const aks: ProviderModule<AksRequest> = {
  id: 'aks',
  binding: (req) => ({
    issuer: req.issuer,
    namespace: req.namespace,
    serviceAccount: req.serviceAccount,
    subject: subject(req.namespace, req.serviceAccount),
    audience: AUDIENCE,
  }),
  phases,
  manifestValues: (req) => ({ serviceAccountAnnotations: buildAnnotations(req), podLabels: { [USE_LABEL]: 'true' } }),
  inject: injectPod,
};
