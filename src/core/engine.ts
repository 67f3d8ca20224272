/**
 * The engine: phases → steps → Plan. Offline there is nothing to observe, so every step is `ensure`.
 */
import type { KubeObject, ProviderModule } from './phase.js';
import type { Plan } from './plan.js';
import type { SetupRequest } from './request.js';

export function buildOfflinePlan<R extends SetupRequest>(provider: ProviderModule<R>, req: R, manifests: KubeObject[], dryRun: boolean): Plan {
  return {
    apiVersion: 'wid/v1',
    kind: 'Plan',
    provider: provider.id,
    dryRun,
    binding: provider.binding(req),
    steps: provider.phases.flatMap((phase) => phase.build(req)),
    manifests,
  };
}
