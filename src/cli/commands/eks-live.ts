/**
 * The request and clients of a live EKS run (setup or teardown): flags are checked first, then the
 * kubeconfig is loaded, then the cluster is read.
 */
import type { EksRequest } from '../../core/request.js';
import { readCluster, type EksContext } from '../../providers/eks/phases.js';
import type { Factory } from '../factory.js';
import type { IO } from '../io.js';
import { timeout, eksFlags, eksRequest, retryDelay, type RawOptions, kubeTarget } from '../request.js';

export async function eksLive(raw: RawOptions, io: IO, factory: Factory, opts: { kube: boolean }): Promise<{ req: EksRequest; ctx: EksContext }> {
  // Flags, then the kubeconfig and context, then the cloud: bad input fails before any request.
  eksFlags(raw);
  const kube = opts.kube ? await factory.kube(kubeTarget(raw, io)) : undefined;
  const aws = await factory.aws({ ...timeout(io), ...(raw.region === undefined ? {} : { region: raw.region }), ...(raw.profile === undefined ? {} : { profile: raw.profile }) });
  const region = raw.region ?? io.env.AWS_REGION ?? io.env.AWS_DEFAULT_REGION;
  const req = await eksRequest(io, raw, async (name) => {
    const { issuer, accountId, partition } = await readCluster(aws, name, region);
    return { issuer, accountId, partition };
  });
  return { req, ctx: { aws, ...(kube === undefined ? {} : { kube }), ...retryDelay(io) } };
}
