/**
 * Pure builders for GKE workload identity, in its two modes:
 * - gsa: the KSA impersonates a Google service account (roles/iam.workloadIdentityUser binding on the
 *   GSA for serviceAccount:POOL[ns/sa]; the KSA annotated iam.gke.io/gcp-service-account);
 * - direct: roles are granted to the KSA's federated principal, no GSA and no annotation.
 */
import type { GkeRequest } from '../../core/request.js';

export const GSA_ANNOTATION = 'iam.gke.io/gcp-service-account';
export const WORKLOAD_IDENTITY_USER = 'roles/iam.workloadIdentityUser';

export function defaultWorkloadPool(project: string): string {
  return `${project}.svc.id.goog`;
}

/** The project that owns a GSA: the domain part of its email. */
export function gsaProject(email: string): string {
  return email.slice(email.indexOf('@') + 1).replace(/\.iam\.gserviceaccount\.com$/, '');
}

export function gsaResource(email: string): string {
  return `projects/${gsaProject(email)}/serviceAccounts/${email}`;
}

/** The KSA as an IAM member (gsa mode): `serviceAccount:PROJECT_ID.svc.id.goog[NS/KSA]`. */
export function ksaMember(req: Pick<GkeRequest, 'workloadPool' | 'namespace' | 'serviceAccount'>): string {
  return `serviceAccount:${req.workloadPool}[${req.namespace}/${req.serviceAccount}]`;
}

/**
 * The KSA's federated principal (direct mode). The project NUMBER goes in `projects/…` and the
 * project ID in the pool name; swapping them is a classic INVALID_ARGUMENT.
 */
export function ksaPrincipal(req: Pick<GkeRequest, 'workloadPool' | 'namespace' | 'serviceAccount'> & { projectNumber: string }): string {
  return `principal://iam.googleapis.com/projects/${req.projectNumber}/locations/global/workloadIdentityPools/${req.workloadPool}/subject/ns/${req.namespace}/sa/${req.serviceAccount}`;
}

/** The serviceAccounts.create body. */
export function buildServiceAccount(_req: GkeRequest, email: string): Record<string, unknown> {
  return {
    accountId: email.slice(0, email.indexOf('@')),
    // The same for every ServiceAccount: several may share the account (its IAM policy names them).
    serviceAccount: {
      displayName: 'Kubernetes workload identity',
      description: 'Impersonated by Kubernetes ServiceAccounts through workload identity [managed by wid]',
    },
  };
}

/** The binding ensured in the GSA's IAM policy (read-modify-write; other bindings are kept). */
export function buildWorkloadIdentityBinding(req: GkeRequest): { role: string; members: string[] } {
  return { role: WORKLOAD_IDENTITY_USER, members: [ksaMember(req)] };
}

/** The member that project roles are granted to in this mode. */
export function roleMember(req: GkeRequest): string {
  if (req.mode === 'gsa') return `serviceAccount:${req.gsa}`;
  return ksaPrincipal({ ...req, projectNumber: req.projectNumber ?? '' });
}

export function buildProjectRoleBinding(req: GkeRequest, role: string): { role: string; members: string[] } {
  return { role, members: [roleMember(req)] };
}

export function buildAnnotations(req: GkeRequest): Record<string, string> {
  return req.mode === 'gsa' && req.gsa !== undefined ? { [GSA_ANNOTATION]: req.gsa } : {};
}
