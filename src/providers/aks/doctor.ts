/**
 * `wid doctor aks`: from the ServiceAccount's client-id annotation to a token exchange Entra would
 * accept: the identity with that client id, a federated credential matching the token's exact issuer,
 * subject and audience, the webhook, and pods that are labelled and mutated.
 */
import type { KubeObject } from '../../core/phase.js';
import type { KubeApi } from '../../kube/client.js';
import { checkIssuerAndToken, checkWebhook, hasEnv, metaOf, podsOf } from '../../doctor/kube.js';
import type { Checks } from '../../doctor/report.js';
import { AUDIENCE, CLIENT_ID_ANNOTATION, USE_LABEL } from './build.js';
import type { AzureApi, ManagedIdentity } from './client.js';

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** `/subscriptions/S/resourceGroups/RG/providers/...`: the resource group of an ARM id. */
const groupOf = (id: string): string => /\/resourceGroups\/([^/]+)\//i.exec(id)?.[1] ?? '';

export async function doctorAks(
  kube: KubeApi,
  azure: AzureApi,
  namespace: string,
  name: string,
  sa: KubeObject,
  checks: Checks,
  opts: { identity?: string; resourceGroup?: string },
): Promise<void> {
  const clientId = (metaOf(sa).annotations ?? {})[CLIENT_ID_ANNOTATION];
  if (clientId === undefined || !GUID.test(clientId)) {
    checks.fail('annotation', clientId === undefined ? `the ServiceAccount has no ${CLIENT_ID_ANNOTATION} annotation` : `${CLIENT_ID_ANNOTATION} is not a GUID`, {
      expected: 'the managed identity\'s client id',
      found: clientId ?? '(none)',
      fix: `wid setup aks --cluster CLUSTER -g RG --sa ${name} -n ${namespace} --identity NAME`,
    });
    return;
  }
  checks.pass('annotation', `${CLIENT_ID_ANNOTATION} is ${clientId}`);

  const { claims } = await checkIssuerAndToken(kube, namespace, name, AUDIENCE, checks);

  let identity: ManagedIdentity | undefined;
  if (opts.identity !== undefined && opts.resourceGroup !== undefined) identity = await azure.getIdentity(opts.resourceGroup, opts.identity);
  else identity = (await azure.listIdentities()).find((i) => i.clientId.toLowerCase() === clientId.toLowerCase() && (opts.identity === undefined || i.name === opts.identity));
  if (!identity) {
    checks.fail('managed-identity', opts.identity !== undefined ? `managed identity ${opts.identity} was not found` : `no managed identity in the subscription has client id ${clientId}`, {
      fix: 'check the annotation (az identity list --query "[].{name:name, clientId:clientId}" -o table), or pass --subscription, --identity and -g',
    });
  } else if (identity.clientId.toLowerCase() !== clientId.toLowerCase()) {
    checks.fail('managed-identity', `managed identity ${identity.name} has another client id than the annotation`, {
      expected: identity.clientId,
      found: clientId,
      fix: `wid setup aks --cluster CLUSTER -g RG --sa ${name} -n ${namespace} --identity ${identity.name} --override`,
    });
  } else {
    checks.pass('managed-identity', `managed identity ${identity.name} has client id ${clientId}`);
  }

  if (identity && claims) {
    const fics = await azure.listFederatedCredentials(groupOf(identity.id), identity.name);
    const exact = fics.find((f) => f.issuer === claims.iss && f.subject === claims.sub);
    const strip = (s: string): string => s.replace(/\/+$/, '');
    if (exact && exact.audiences.includes(AUDIENCE)) {
      checks.pass('federated-credential', `federated credential ${exact.name} trusts issuer ${claims.iss} and subject ${claims.sub}`);
    } else if (exact) {
      checks.fail('federated-credential', `federated credential ${exact.name} has the wrong audience`, { expected: AUDIENCE, found: JSON.stringify(exact.audiences), fix: `az identity federated-credential update --name ${exact.name} --identity-name ${identity.name} -g ${groupOf(identity.id)} --audiences ${AUDIENCE}` });
    } else {
      const slash = fics.find((f) => f.subject === claims.sub && strip(f.issuer) === strip(claims.iss));
      const sameIssuer = fics.filter((f) => f.issuer === claims.iss).map((f) => f.subject);
      checks.fail(
        'federated-credential',
        slash
          ? `federated credential ${slash.name} names the issuer ${slash.issuer}, but tokens say ${claims.iss}: the trailing "/" differs, and Entra compares byte for byte (AADSTS700211)`
          : sameIssuer.length > 0
            ? `no federated credential of ${identity.name} trusts the subject ${claims.sub} (AADSTS700213)`
            : `no federated credential of ${identity.name} trusts the issuer ${claims.iss} (AADSTS700211)`,
        {
          expected: `issuer ${claims.iss}, subject ${claims.sub}`,
          found: fics.length === 0 ? '(no federated credentials)' : fics.map((f) => `${f.name}: ${f.issuer} ${f.subject}`).join('; '),
          fix: `wid setup aks --cluster CLUSTER -g RG --sa ${name} -n ${namespace} --identity ${identity.name}`,
        },
      );
    }
  }

  await checkWebhook(kube, ['azure-wi-webhook'], 'the Azure workload identity webhook (without it labelled pods get no token)', 'az aks update -g RG -n CLUSTER --enable-workload-identity', checks);

  const pods = await podsOf(kube, namespace, name, checks);
  if (!pods) return;
  const unlabelled = pods.filter((p) => metaOf(p).labels?.[USE_LABEL] !== 'true').map((p) => metaOf(p).name ?? '?');
  const unmutated = pods.filter((p) => metaOf(p).labels?.[USE_LABEL] === 'true' && !hasEnv(p, 'AZURE_FEDERATED_TOKEN_FILE')).map((p) => metaOf(p).name ?? '?');
  if (unlabelled.length > 0) {
    checks.fail('pods', `pod${unlabelled.length === 1 ? '' : 's'} ${unlabelled.join(', ')} lack${unlabelled.length === 1 ? 's' : ''} the label ${USE_LABEL}: "true", so the webhook skips them`, {
      fix: `add the label to the pod template (spec.template.metadata.labels), then restart`,
    });
  }
  if (unmutated.length > 0) {
    checks.fail('pods', `pod${unmutated.length === 1 ? '' : 's'} ${unmutated.join(', ')} ${unmutated.length === 1 ? 'was' : 'were'} not mutated (no AZURE_FEDERATED_TOKEN_FILE): started before the webhook or the annotation`, {
      fix: `restart them: kubectl delete pod -n ${namespace} ${unmutated.join(' ')}`,
    });
  }
  if (unlabelled.length === 0 && unmutated.length === 0) {
    checks.pass('pods', pods.length === 0 ? `no pods run as ${name} yet` : `all ${pods.length} pod${pods.length === 1 ? '' : 's'} running as ${name} are labelled and mutated`);
  }
}
