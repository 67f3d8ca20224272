/**
 * `wid audit`, end to end: the built wid and @kubernetes/client-node against the Kubernetes emulator.
 * Legacy ServiceAccount token Secrets and the pods that use them are found, secret data never reaches
 * any output, and the exit code says whether anything was found.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startKubeEmulator, type KubeEmulator } from '../emulators/kube/server.js';
import { baseEnv, wid } from '../helpers/wid.js';

const TOKEN_TYPE = 'kubernetes.io/service-account-token';
/** Stands in for a real token in a Secret's data; it must never be printed. */
const SECRET_VALUE = 'eyJhbGciOiJSUzI1NiIsImtpZCI6ImF1ZGl0LXRlc3QifQ.bGVnYWN5.c2lnbmF0dXJl';
const SECRET_DATA = { token: Buffer.from(SECRET_VALUE).toString('base64'), namespace: Buffer.from('apps').toString('base64') };

let kube: KubeEmulator;
let tmp: string;
let env: Record<string, string>;

beforeAll(async () => {
  kube = await startKubeEmulator();
  tmp = mkdtempSync(join(tmpdir(), 'wid-audit-'));
  const kubeconfig = join(tmp, 'kubeconfig');
  kube.writeKubeconfig(kubeconfig, { context: 'prod' });
  env = { ...baseEnv(tmp), KUBECONFIG: kubeconfig };
});

afterAll(async () => {
  await kube?.close();
  rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => kube.reset());

/** What a healthy namespace holds: an ordinary Secret, a pod that mounts it, a pod that mounts nothing. */
function seedHealthy(): void {
  kube.seedServiceAccount({ namespace: 'apps', name: 'web' });
  kube.seedSecret({ namespace: 'apps', name: 'db-password', data: { password: Buffer.from('hunter2').toString('base64') } });
  kube.seedPod({ namespace: 'apps', name: 'api', serviceAccountName: 'web', volumes: [{ name: 'db', secret: { secretName: 'db-password' } }] });
  kube.seedPod({ namespace: 'apps', name: 'plain', serviceAccountName: 'web' });
}

function seedFindings(): void {
  seedHealthy();
  kube.seedServiceAccount({ namespace: 'apps', name: 'build-robot' });
  kube.seedSecret({ namespace: 'apps', name: 'build-robot-token', type: TOKEN_TYPE, annotations: { 'kubernetes.io/service-account.name': 'build-robot' }, data: SECRET_DATA });
  kube.seedSecret({
    namespace: 'apps',
    name: 'old-token',
    type: TOKEN_TYPE,
    annotations: { 'kubernetes.io/service-account.name': 'build-robot' },
    labels: { 'kubernetes.io/legacy-token-last-used': '2024-03-01' },
  });
  kube.seedPod({
    namespace: 'apps',
    name: 'web',
    serviceAccountName: 'build-robot',
    volumes: [
      { name: 'token', secret: { secretName: 'build-robot-token' } },
      { name: 'bundle', projected: { sources: [{ secret: { name: 'build-robot-token' } }, { configMap: { name: 'ca' } }] } },
    ],
  });
  kube.seedPod({
    namespace: 'apps',
    name: 'worker',
    serviceAccountName: 'build-robot',
    containers: [
      { name: 'main', image: 'busybox', env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'build-robot-token', key: 'token' } } }] },
      { name: 'sidecar', image: 'busybox', envFrom: [{ secretRef: { name: 'build-robot-token' } }] },
    ],
  });
  // Same Secret name in another namespace: a pod can only mount Secrets of its own namespace.
  kube.seedPod({ namespace: 'ci', name: 'runner', volumes: [{ name: 't', secret: { secretName: 'build-robot-token' } }] });
  kube.seedSecret({ namespace: 'ci', name: 'deployer-token', type: TOKEN_TYPE, annotations: { 'kubernetes.io/service-account.name': 'deployer' } });
}

/** No request wid sends may write, and no output may carry secret data. */
function expectReadOnlyAndClean(r: { stdout: string; stderr: string }): void {
  expect(kube.writes()).toEqual([]);
  for (const text of [r.stdout, r.stderr]) {
    for (const secret of [SECRET_VALUE, SECRET_DATA.token, 'hunter2', Buffer.from('hunter2').toString('base64'), Buffer.from('placeholder').toString('base64')]) {
      expect(text).not.toContain(secret);
    }
  }
}

describe('wid audit against the kube emulator', () => {
  it('finds nothing in a healthy namespace: exit 0, empty stdout, a summary on stderr', async () => {
    seedHealthy();
    const r = await wid(['audit', '-n', 'apps'], env);
    expect(r.stderr).toBe('No legacy ServiceAccount token Secrets in namespace apps (kube context prod).\n');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(kube.log.map((q) => `${q.method} ${q.path}`)).toEqual(['GET /api/v1/namespaces/apps/secrets', 'GET /api/v1/namespaces/apps/pods']);
    expectReadOnlyAndClean(r);

    const j = await wid(['audit', '-n', 'apps', '-o', 'json'], env);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual({ apiVersion: 'wid/v1', kind: 'Audit', context: 'prod', namespace: 'apps', secrets: [], pods: [] });
  });

  it('finds the legacy token Secrets and the pods that use them: tables on stdout, advice on stderr, exit 3', async () => {
    seedFindings();
    const r = await wid(['audit', '-n', 'apps'], env);
    expect(r.code).toBe(3);
    const created = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/.source;
    expect(r.stdout).toMatch(
      new RegExp(
        [
          '^NAMESPACE  SECRET             SERVICEACCOUNT  CREATED               LAST USED      PODS',
          `apps       build-robot-token  build-robot     ${created}  <not tracked>  2`,
          `apps       old-token          build-robot     ${created}  2024-03-01     0`,
          '',
          'NAMESPACE  POD     SERVICEACCOUNT  SECRET             VIA',
          'apps       web     build-robot     build-robot-token  volume token',
          'apps       web     build-robot     build-robot-token  volume bundle',
          'apps       worker  build-robot     build-robot-token  env TOKEN in container main',
          'apps       worker  build-robot     build-robot-token  envFrom in container sidecar',
          '$',
        ].join('\n'),
      ),
    );
    expect(r.stderr).toContain('Found 2 legacy ServiceAccount token Secrets in namespace apps, used by 2 pods (kube context prod).\n');
    expect(r.stderr).toContain('apps/build-robot-token: used by web, worker; afterwards: kubectl delete secret build-robot-token -n apps\n');
    expect(r.stderr).toContain('  kubectl delete secret old-token -n apps\n');
    expect(r.stderr).toContain('kubectl create token build-robot -n apps --duration 1h');
    expect(r.stderr).not.toMatch(/^error:/m);
    expectReadOnlyAndClean(r);
  });

  it('gives the findings as data with -o json', async () => {
    seedFindings();
    const r = await wid(['audit', '-n', 'apps', '-o', 'json'], env);
    expect(r.code).toBe(3);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j)).toEqual(['apiVersion', 'kind', 'context', 'namespace', 'secrets', 'pods']);
    expect(j).toMatchObject({ apiVersion: 'wid/v1', kind: 'Audit', context: 'prod', namespace: 'apps' });
    expect(j.secrets).toEqual([
      { namespace: 'apps', name: 'build-robot-token', serviceAccount: 'build-robot', createdAt: expect.stringMatching(/Z$/), lastUsed: null, invalidSince: null, pods: ['web', 'worker'] },
      { namespace: 'apps', name: 'old-token', serviceAccount: 'build-robot', createdAt: expect.stringMatching(/Z$/), lastUsed: '2024-03-01', invalidSince: null, pods: [] },
    ]);
    expect(j.pods).toEqual([
      {
        namespace: 'apps',
        name: 'web',
        serviceAccount: 'build-robot',
        uses: [
          { secret: 'build-robot-token', via: 'volume', volume: 'token' },
          { secret: 'build-robot-token', via: 'volume', volume: 'bundle' },
        ],
      },
      {
        namespace: 'apps',
        name: 'worker',
        serviceAccount: 'build-robot',
        uses: [
          { secret: 'build-robot-token', via: 'env', container: 'main', env: 'TOKEN' },
          { secret: 'build-robot-token', via: 'envFrom', container: 'sidecar' },
        ],
      },
    ]);
    expect(r.stderr).toContain('Found 2 legacy ServiceAccount token Secrets');
    expectReadOnlyAndClean(r);
  });

  it('audits every namespace with --all-namespaces, matching Secrets to pods of their own namespace only', async () => {
    seedFindings();
    const r = await wid(['audit', '--all-namespaces', '-o', 'json'], env);
    expect(r.code).toBe(3);
    expect(kube.log.map((q) => `${q.method} ${q.path}`)).toEqual(['GET /api/v1/secrets', 'GET /api/v1/pods']);
    const j = JSON.parse(r.stdout);
    expect(j.namespace).toBeNull();
    expect(j.secrets.map((s: { namespace: string; name: string; pods: string[] }) => `${s.namespace}/${s.name}:${s.pods.join(',')}`)).toEqual([
      'apps/build-robot-token:web,worker',
      'apps/old-token:',
      'ci/deployer-token:',
    ]);
    expect(j.pods.map((p: { namespace: string; name: string }) => `${p.namespace}/${p.name}`)).toEqual(['apps/web', 'apps/worker']);
    expect(r.stderr).toContain('Found 3 legacy ServiceAccount token Secrets in any namespace, used by 2 pods');
    expectReadOnlyAndClean(r);
  });

  it('refuses -n with --all-namespaces (exit 2) before reaching the cluster', async () => {
    const r = await wid(['audit', '-n', 'apps', '--all-namespaces'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: --namespace and --all-namespaces contradict each other\nhint: /);
    expect(kube.log).toEqual([]);
  });

  it('rejects a bad namespace or output format (exit 2) before reaching the cluster', async () => {
    for (const [args, message] of [
      [['-n', 'Apps'], /--namespace "Apps" is invalid: a namespace must be a DNS-1123 label/],
      [['-o', 'yaml'], /--output "yaml" is invalid: expected one of text, json/],
    ] as const) {
      const r = await wid(['audit', ...args], env);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(kube.log).toEqual([]);
  });

  it('is a run-time failure (exit 1) when the cluster refuses to list Secrets', async () => {
    kube.faults.failNext('GET', /\/secrets$/, 403, 'Forbidden', 'secrets is forbidden: User "dev" cannot list resource "secrets" in API group "" in the namespace "apps"');
    const r = await wid(['audit', '-n', 'apps'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: list secrets failed: Forbidden: secrets is forbidden/);
    expect(r.stderr).toMatch(/hint: .*kubectl auth can-i/);
  });
});
