/**
 * GKE phases. gsa mode: the Google service account, the workloadIdentityUser binding on it, then
 * project roles for it. direct mode: project roles for the KSA's principal only.
 */
import { UsageError } from '../../core/errors.js';
import type { Phase, ProviderModule } from '../../core/phase.js';
import { subject } from '../../core/naming.js';
import type { GkeRequest } from '../../core/request.js';
import { buildAnnotations, buildProjectRoleBinding, buildServiceAccount, buildWorkloadIdentityBinding, gsaResource } from './build.js';

const phases: Phase<GkeRequest>[] = [
  {
    name: 'service-account',
    description: 'Google service account the KSA impersonates (gsa mode)',
    build: (req) =>
      req.mode === 'gsa' && req.gsa !== undefined
        ? [{ phase: 'service-account', action: 'ensure', resource: gsaResource(req.gsa), desired: buildServiceAccount(req, req.gsa) }]
        : [],
  },
  {
    name: 'iam-binding',
    description: 'roles/iam.workloadIdentityUser for the KSA on the Google service account (gsa mode)',
    build: (req) =>
      req.mode === 'gsa' && req.gsa !== undefined
        ? [{ phase: 'iam-binding', action: 'ensure', resource: gsaResource(req.gsa), desired: buildWorkloadIdentityBinding(req) }]
        : [],
  },
  {
    name: 'project-role',
    description: 'roles granted on the project (--role) to the GSA or the KSA principal',
    build: (req) =>
      req.roles.map((role) => ({ phase: 'project-role', action: 'ensure' as const, resource: `projects/${req.project}`, desired: buildProjectRoleBinding(req, role) })),
  },
];

export const gke: ProviderModule<GkeRequest> = {
  id: 'gke',
  binding: (req) => ({
    issuer: req.issuer ?? null,
    namespace: req.namespace,
    serviceAccount: req.serviceAccount,
    subject: subject(req.namespace, req.serviceAccount),
    audience: req.workloadPool,
  }),
  phases,
  manifestValues: (req) => ({ serviceAccountAnnotations: buildAnnotations(req), podLabels: {} }),
  inject: () => {
    // Validation rejects --inject for GKE before a plan is built; this guards direct callers.
    throw new UsageError('WID_E_INPUT_CONFLICT', '--inject does not apply to gke: GKE serves tokens from its metadata server, with no projected token to inject', { flag: '--inject' });
  },
};
