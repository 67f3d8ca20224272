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
  const PRINCIPAL = '44444444-4444-4444-4444-444444444444';

  it('turns a role GUID into a definition id, names the principal type and marks the assignment as wid\'s', () => {
    const { resource, desired, pending } = buildRoleAssignment(req({ principalId: PRINCIPAL }), ra);
    expect(desired.properties).toEqual({
      roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7`,
      principalId: PRINCIPAL,
      principalType: 'ServicePrincipal',
      description: 'workload identity [managed by wid]',
    });
    expect(resource).toBe(`${ra.scope}/providers/Microsoft.Authorization/roleAssignments/${desired.name}`);
    expect(pending).toEqual({});
  });

  it('marks what only the cloud can tell as pending', () => {
    const { resource, desired, pending } = buildRoleAssignment(req(), { role: 'Key Vault Secrets User', scope: ra.scope });
    expect(desired.properties).toEqual({ principalType: 'ServicePrincipal', description: 'workload identity [managed by wid]' });
    expect(Object.keys(pending)).toEqual(['properties.roleDefinitionId', 'properties.principalId', 'name']);
    expect(resource).toBe(`${ra.scope}/providers/Microsoft.Authorization/roleAssignments`);
  });

  it('names assignments deterministically from scope, principal and role', () => {
    const def = `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7`;
    const a = roleAssignmentName(ra.scope, PRINCIPAL, def);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Case and the definition id's scope prefix do not change it: ARM treats them as the same.
    expect(roleAssignmentName(ra.scope.toUpperCase(), PRINCIPAL, `/providers/Microsoft.Authorization/roleDefinitions/ACDD72A7-3385-48EF-BD42-F606FBA81AE7`)).toBe(a);
    expect(roleAssignmentName(`/subscriptions/${SUB}`, PRINCIPAL, def)).not.toBe(a);
    expect(roleAssignmentName(ra.scope, '55555555-5555-5555-5555-555555555555', def)).not.toBe(a);
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
