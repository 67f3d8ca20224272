import { describe, expect, it } from 'vitest';
import type { GkeRequest } from '../../src/core/request.js';
import { buildAnnotations, buildProjectRoleBinding, buildWorkloadIdentityBinding, gsaResource, ksaMember, ksaPrincipal } from '../../src/providers/gke/build.js';

function req(over: Partial<GkeRequest> = {}): GkeRequest {
  return { provider: 'gke', namespace: 'apps', serviceAccount: 'ksa', inject: false, project: 'my-project', mode: 'direct', projectNumber: '123456789012', workloadPool: 'my-project.svc.id.goog', roles: [], ...over };
}

describe('gke members', () => {
  it('gsa mode member is serviceAccount:POOL[ns/sa]', () => {
    expect(ksaMember(req())).toBe('serviceAccount:my-project.svc.id.goog[apps/ksa]');
  });

  it('direct mode principal puts the project number in projects/ and the project id in the pool', () => {
    expect(ksaPrincipal({ ...req(), projectNumber: '123456789012' })).toBe(
      'principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/my-project.svc.id.goog/subject/ns/apps/sa/ksa',
    );
  });

  it('gsa mode binds workloadIdentityUser on the GSA and grants roles to the GSA', () => {
    const r = req({ mode: 'gsa', gsa: 'g-sa-01@other-proj.iam.gserviceaccount.com' });
    expect(buildWorkloadIdentityBinding(r)).toEqual({ role: 'roles/iam.workloadIdentityUser', members: ['serviceAccount:my-project.svc.id.goog[apps/ksa]'] });
    expect(buildProjectRoleBinding(r, 'roles/viewer')).toEqual({ role: 'roles/viewer', members: ['serviceAccount:g-sa-01@other-proj.iam.gserviceaccount.com'] });
    expect(gsaResource(r.gsa!)).toBe('projects/other-proj/serviceAccounts/g-sa-01@other-proj.iam.gserviceaccount.com');
    expect(buildAnnotations(r)).toEqual({ 'iam.gke.io/gcp-service-account': 'g-sa-01@other-proj.iam.gserviceaccount.com' });
  });

  it('direct mode has no annotation', () => {
    expect(buildAnnotations(req())).toEqual({});
  });
});
