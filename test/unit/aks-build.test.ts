import { describe, expect, it } from 'vitest';
import type { AksRequest } from '../../src/core/request.js';
import { buildAnnotations, buildFederatedCredential, buildRoleAssignment, injectPod, roleAssignmentName } from '../../src/providers/aks/build.js';

const SUB = '22222222-2222-2222-2222-222222222222';

function req(over: Partial<AksRequest> = {}): AksRequest {
  return {
    provider: 'aks',
    namespace: 'apps',
    serviceAccount: 'my-sa',
    inject: false,
    issuer: 'https://eastus.oic.prod-aks.azure.com/tenant/issuer/',
    clientId: '33333333-3333-3333-3333-333333333333',
    subscription: SUB,
    resourceGroup: 'rg',
    identity: 'my-id',
    roleAssignments: [],
    ...over,
  };
}

describe('aks federated credential', () => {
  it('keeps the issuer byte for byte, trailing slash included', () => {
    const fic = buildFederatedCredential(req());
    expect(fic.properties).toEqual({
      issuer: 'https://eastus.oic.prod-aks.azure.com/tenant/issuer/',
      subject: 'system:serviceaccount:apps:my-sa',
      audiences: ['api://AzureADTokenExchange'],
    });
    expect(buildFederatedCredential(req({ issuer: 'https://x.example/issuer' })).properties.issuer).toBe('https://x.example/issuer');
  });

  it('has a deterministic, valid name', () => {
    expect(buildFederatedCredential(req()).name).toBe(buildFederatedCredential(req()).name);
    expect(buildFederatedCredential(req()).name).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$/);
  });
});

describe('aks role assignments', () => {
  const ra = { role: 'acdd72a7-3385-48ef-bd42-f606fba81ae7', scope: `/subscriptions/${SUB}/resourceGroups/rg` };

  it('turns a role GUID into a definition id and names the principal type', () => {
    const { desired, pending } = buildRoleAssignment(req({ principalId: '44444444-4444-4444-4444-444444444444' }), ra);
    expect(desired.properties).toEqual({
      roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7`,
      principalId: '44444444-4444-4444-4444-444444444444',
      principalType: 'ServicePrincipal',
    });
    expect(pending).toEqual({});
  });

  it('marks what only the cloud can tell as pending', () => {
    const { desired, pending } = buildRoleAssignment(req(), { role: 'Key Vault Secrets User', scope: ra.scope });
    expect(desired.properties).toEqual({ principalType: 'ServicePrincipal' });
    expect(Object.keys(pending)).toEqual(['properties.roleDefinitionId', 'properties.principalId']);
  });

  it('names assignments deterministically, per scope and role', () => {
    const a = roleAssignmentName(req(), ra);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(roleAssignmentName(req(), ra)).toBe(a);
    expect(roleAssignmentName(req(), { ...ra, scope: `/subscriptions/${SUB}` })).not.toBe(a);
  });
});

describe('aks manifests', () => {
  it('annotates client id, and tenant id only when given', () => {
    expect(buildAnnotations(req())).toEqual({ 'azure.workload.identity/client-id': '33333333-3333-3333-3333-333333333333' });
    expect(buildAnnotations(req({ tenantId: '11111111-1111-1111-1111-111111111111' }))).toHaveProperty(['azure.workload.identity/tenant-id'], '11111111-1111-1111-1111-111111111111');
  });

  it('--inject adds the webhook env in its order, keeps existing values and drops the webhook label', () => {
    const pod = {
      metadata: { labels: { 'azure.workload.identity/use': 'true' } },
      spec: { containers: [{ name: 'c', image: 'i', env: [{ name: 'AZURE_CLIENT_ID', value: 'kept' }] }] },
    };
    injectPod(pod, req({ tenantId: '11111111-1111-1111-1111-111111111111' }));
    expect(pod.spec.containers[0]!.env.map((e) => `${e.name}=${e.value}`)).toEqual([
      'AZURE_CLIENT_ID=kept',
      'AZURE_TENANT_ID=11111111-1111-1111-1111-111111111111',
      'AZURE_FEDERATED_TOKEN_FILE=/var/run/secrets/azure/tokens/azure-identity-token',
      'AZURE_AUTHORITY_HOST=https://login.microsoftonline.com/',
    ]);
    expect(pod.metadata).toEqual({});
    expect((pod.spec as Record<string, unknown>).volumes).toEqual([
      { name: 'azure-identity-token', projected: { sources: [{ serviceAccountToken: { path: 'azure-identity-token', expirationSeconds: 3600, audience: 'api://AzureADTokenExchange' } }] } },
    ]);
  });
});
