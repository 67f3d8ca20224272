/**
 * The request and clients of a live GKE run (setup or teardown): flags are checked first, then the
 * kubeconfig is loaded, then the cluster (and, in direct mode, the project number) is read.
 */
import type { GkeRequest } from '../../core/request.js';
import { readCluster, type GkeContext } from '../../providers/gke/phases.js';
import { gcpEndpoints, type Factory } from '../factory.js';
import type { IO } from '../io.js';
import { timeout, gkeFlags, gkeRequest, retryDelay, type RawOptions, kubeTarget } from '../request.js';

export async function gkeLive(raw: RawOptions, io: IO, factory: Factory, opts: { kube: boolean }): Promise<{ req: GkeRequest; ctx: GkeContext; warnings: string[] }> {
  // Flags, then the kubeconfig and context, then the cloud: bad input fails before any request.
  gkeFlags(raw);
  const kube = opts.kube ? await factory.kube(kubeTarget(raw, io)) : undefined;
  const env = io.env;
  // Known before any call (the project is needed up front, so Google's auth library never searches for one).
  const project = raw.project ?? env.CLOUDSDK_CORE_PROJECT ?? env.GOOGLE_CLOUD_PROJECT;
  const gcp = await factory.gcp({
    ...timeout(io),
    ...retryDelay(io),
    ...(project === undefined ? {} : { project }),
    endpoints: gcpEndpoints(env),
  });
  let warnings: string[] = [];
  const req = await gkeRequest(io, raw, async (project, location, cluster, mode) => {
    const [facts, projectNumber] = await Promise.all([readCluster(gcp, project, location, cluster), mode === 'direct' ? gcp.getProjectNumber(project) : Promise.resolve(undefined)]);
    warnings = facts.warnings;
    return { workloadPool: facts.workloadPool, ...(projectNumber === undefined ? {} : { projectNumber }) };
  });
  return { req, ctx: { gcp, ...(kube === undefined ? {} : { kube }), ...retryDelay(io) }, warnings };
}
