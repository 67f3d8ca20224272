/**
 * The request and clients of a live AKS run (setup or teardown): flags are checked first, then the
 * kubeconfig is loaded, then the cluster and the identity are read.
 */
import type { AksRequest } from '../../core/request.js';
import { observeIdentity, readCluster, type AksContext } from '../../providers/aks/phases.js';
import { azureEndpoints, type Factory } from '../factory.js';
import type { IO } from '../io.js';
import { timeout, aksFlags, aksRequest, retryDelay, type RawOptions, kubeTarget } from '../request.js';

export async function aksLive(raw: RawOptions, io: IO, factory: Factory, opts: { kube: boolean }): Promise<{ req: AksRequest; ctx: AksContext }> {
  // Flags, then the kubeconfig and context, then the cloud: bad input fails before any request.
  aksFlags(raw);
  const kube = opts.kube ? await factory.kube(kubeTarget(raw, io)) : undefined;
  let ctx: AksContext | undefined;
  const req = await aksRequest(io, raw, async (subscription, resourceGroup, cluster) => {
    const azure = await factory.azure({
      ...timeout(io),
      subscription,
      ...azureEndpoints(io.env),
    });
    ctx = { azure, ...(kube === undefined ? {} : { kube }), ...retryDelay(io) };
    const c = await readCluster(azure, resourceGroup, cluster);
    return { issuer: c.issuer, location: c.location };
  });
  // The identity's ids (client id, principal, tenant) go into the request before anything is planned.
  await observeIdentity(req, ctx!);
  return { req, ctx: ctx! };
}
