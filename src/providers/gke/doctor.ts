/**
 * `wid doctor gke`: the cluster's workload pool and node pools, a token for the pool, then in gsa mode
 * the workloadIdentityUser binding on the Google service account, in direct mode the project grants to
 * the exact principal (number, not id), and pods on the host network (which bypass workload identity).
 */
import type { KubeObject } from '../../core/phase.js';
import type { KubeApi } from '../../kube/client.js';
import { checkIssuerAndToken, metaOf, podsOf } from '../../doctor/kube.js';
import type { Checks } from '../../doctor/report.js';
import { GSA_ANNOTATION, WORKLOAD_IDENTITY_USER, ksaMember, ksaPrincipal } from './build.js';
import type { GcpApi } from './client.js';
import { hasMember, rolesOf } from './policy.js';

export async function doctorGke(
  kube: KubeApi,
  gcp: GcpApi,
  namespace: string,
  name: string,
  sa: KubeObject,
  checks: Checks,
  opts: { project: string; cluster: string; location: string },
): Promise<void> {
  const cluster = await gcp.getCluster(opts.project, opts.location, opts.cluster);
  if (!cluster.workloadPool) {
    checks.fail('workload-pool', `cluster ${opts.cluster} has no workload pool: Workload Identity Federation is off`, {
      fix: `gcloud container clusters update ${opts.cluster} --location=${opts.location} --workload-pool=${opts.project}.svc.id.goog`,
    });
    return;
  }
  const pool = cluster.workloadPool;
  checks.pass('workload-pool', `cluster ${opts.cluster} has the workload pool ${pool}`);
  if (!cluster.autopilot) {
    const off = cluster.nodePools.filter((p) => p.mode !== 'GKE_METADATA');
    for (const p of off) {
      checks.fail('node-pools', `node pool ${p.name} does not run the GKE metadata server: its pods get the node's identity`, {
        expected: 'GKE_METADATA',
        found: p.mode ?? '(unset)',
        fix: `gcloud container node-pools update ${p.name} --cluster=${opts.cluster} --location=${opts.location} --workload-metadata=GKE_METADATA`,
      });
    }
    if (off.length === 0) checks.pass('node-pools', `every node pool runs the GKE metadata server`);
  }

  await checkIssuerAndToken(kube, namespace, name, pool, checks);
  const req = { workloadPool: pool, namespace, serviceAccount: name };
  const gsa = (metaOf(sa).annotations ?? {})[GSA_ANNOTATION];
  if (gsa !== undefined) {
    const account = await gcp.getServiceAccount(gsa);
    if (!account) {
      checks.fail('service-account', `the Google service account ${gsa} the annotation names does not exist`, { fix: `wid setup gke --cluster ${opts.cluster} --location ${opts.location} --sa ${name} -n ${namespace} --gsa ${gsa}` });
    } else {
      const policy = await gcp.getServiceAccountPolicy(gsa);
      const member = ksaMember(req);
      if (hasMember(policy, WORKLOAD_IDENTITY_USER, member)) {
        checks.pass('iam-binding', `${gsa} lets ${member} act as it (${WORKLOAD_IDENTITY_USER})`);
      } else {
        const found = (policy.bindings ?? []).filter((b) => b.role === WORKLOAD_IDENTITY_USER).flatMap((b) => b.members);
        checks.fail('iam-binding', `${gsa} does not grant ${WORKLOAD_IDENTITY_USER} to this ServiceAccount`, {
          expected: member,
          found: found.length > 0 ? found.join(', ') : '(no workloadIdentityUser members)',
          fix: `wid setup gke --cluster ${opts.cluster} --location ${opts.location} --sa ${name} -n ${namespace} --gsa ${gsa}`,
        });
      }
    }
  } else {
    const number = await gcp.getProjectNumber(opts.project);
    const principal = ksaPrincipal({ ...req, projectNumber: number });
    const policy = await gcp.getProjectPolicy(opts.project);
    const roles = rolesOf(policy, principal);
    if (roles.length > 0) {
      checks.pass('project-role', `the principal holds ${roles.join(', ')} on project ${opts.project}`);
    } else {
      // The classic slip: the project id where the number belongs, or another namespace.
      const near = (policy.bindings ?? []).flatMap((b) => b.members).filter((m) => m.startsWith('principal://') && m.endsWith(`/sa/${name}`));
      checks.warn('project-role', `the principal holds no role on project ${opts.project} (grants on single resources, such as buckets, are not checked)`, {
        expected: principal,
        ...(near.length > 0 ? { found: near.join(', ') } : {}),
        fix: `wid setup gke --cluster ${opts.cluster} --location ${opts.location} --sa ${name} -n ${namespace} --role ROLE`,
      });
    }
  }

  const pods = await podsOf(kube, namespace, name, checks);
  if (!pods) return;
  const host = pods.filter((p) => (p.spec as { hostNetwork?: boolean } | undefined)?.hostNetwork === true).map((p) => metaOf(p).name ?? '?');
  if (host.length > 0) {
    checks.fail('pods', `pod${host.length === 1 ? '' : 's'} ${host.join(', ')} use${host.length === 1 ? 's' : ''} the host network, which bypasses Workload Identity (they get the node's identity)`, { fix: 'remove hostNetwork: true from the pod spec' });
  } else {
    checks.pass('pods', pods.length === 0 ? `no pods run as ${name} yet` : `no pod running as ${name} uses the host network`);
  }
}
