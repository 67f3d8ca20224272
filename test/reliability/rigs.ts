/**
 * Emulator rigs for the reliability suites: one cloud emulator plus one Kubernetes emulator, and the
 * environment a spawned wid needs to reach them (the same variables as test/e2e/*-live.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAwsEmulator, type AwsEmulator } from '../emulators/aws/server.js';
import { startAzureEmulator, type AzureEmulator } from '../emulators/azure/server.js';
import { startGcpEmulator, type GcpEmulator } from '../emulators/gcp/server.js';
import { startKubeEmulator, type KubeEmulator } from '../emulators/kube/server.js';
import { awsEnv, azureEnv, gcpEnv } from '../helpers/cloud-env.js';
import { baseEnv, wid, type WidResult } from '../helpers/wid.js';

export interface Rig<C> {
  cloud: C;
  kube: KubeEmulator;
  env: Record<string, string>;
  /** Runs the built wid against this rig; `extra` is added to the environment. */
  run(args: string[], extra?: Record<string, string>): Promise<WidResult>;
  close(): Promise<void>;
}

function rig<C extends { close(): Promise<void> }>(cloud: C, kube: KubeEmulator, tmp: string, env: Record<string, string>): Rig<C> {
  return {
    cloud,
    kube,
    env,
    run: (args, extra) => wid(args, { ...env, ...extra }),
    async close() {
      await cloud.close();
      await kube.close();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

// ---- EKS ----

export const EKS = {
  account: '111122223333',
  issuer: 'https://oidc.eks.us-west-2.amazonaws.com/id/REL0123456789ABCDEF0123456789ABCD',
  hostPath: 'oidc.eks.us-west-2.amazonaws.com/id/REL0123456789ABCDEF0123456789ABCD',
  get providerArn(): string {
    return `arn:aws:iam::${this.account}:oidc-provider/${this.hostPath}`;
  },
};

export async function eksRig(): Promise<Rig<AwsEmulator>> {
  const cloud = await startAwsEmulator({ accountId: EKS.account });
  const kube = await startKubeEmulator({ issuer: EKS.issuer });
  const tmp = mkdtempSync(join(tmpdir(), 'wid-rel-eks-'));
  const kubeconfig = join(tmp, 'kubeconfig');
  kube.writeKubeconfig(kubeconfig, { context: 'prod' });
  return rig(cloud, kube, tmp, {
    ...baseEnv(tmp),
    ...awsEnv(cloud),
    KUBECONFIG: kubeconfig,
    WID_RETRY_DELAY_MS: '20',
  });
}

// ---- AKS ----

export const AKS = {
  sub: '0b1f6471-1bf0-4dda-aec3-cb9272f09590',
  rg: 'prod-rg',
  issuer: 'https://westeurope.oic.prod-aks.azure.com/72f988bf-86f1-41af-91ab-2d7cd011db47/9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f/',
  identityId(name: string): string {
    return `/subscriptions/${this.sub}/resourceGroups/${this.rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;
  },
  get scope(): string {
    return `/subscriptions/${this.sub}/resourceGroups/${this.rg}`;
  },
};

export async function aksRig(): Promise<Rig<AzureEmulator>> {
  const cloud = await startAzureEmulator();
  const kube = await startKubeEmulator({ issuer: AKS.issuer });
  const tmp = mkdtempSync(join(tmpdir(), 'wid-rel-aks-'));
  const kubeconfig = join(tmp, 'kubeconfig');
  kube.writeKubeconfig(kubeconfig, { context: 'prod' });
  return rig(cloud, kube, tmp, {
    ...baseEnv(tmp),
    ...azureEnv(cloud, AKS.sub),
    KUBECONFIG: kubeconfig,
    WID_RETRY_DELAY_MS: '20',
  });
}

// ---- GKE ----

export const GKE = {
  project: 'rel-project',
  number: '210987654321',
  location: 'europe-west1',
  pool(project: string): string {
    return `${project}.svc.id.goog`;
  },
  gsaEmail(accountId: string, project: string): string {
    return `${accountId}@${project}.iam.gserviceaccount.com`;
  },
};

export async function gkeRig(): Promise<Rig<GcpEmulator>> {
  const cloud = await startGcpEmulator();
  const kube = await startKubeEmulator();
  const tmp = mkdtempSync(join(tmpdir(), 'wid-rel-gke-'));
  const kubeconfig = join(tmp, 'kubeconfig');
  kube.writeKubeconfig(kubeconfig, { context: 'gke_prod' });
  return rig(cloud, kube, tmp, {
    ...baseEnv(tmp),
    ...gcpEnv(cloud, tmp, GKE.project, GKE.number),
    KUBECONFIG: kubeconfig,
    WID_RETRY_DELAY_MS: '20',
  });
}

// ---- helpers ----

/** Runs `fn` over `items` with at most `limit` running at once; results in input order. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** A stable text of a JSON value: the same bytes for the same document, key order included. */
export const text = (v: unknown): string => JSON.stringify(v);

/** A copy of `o` without the keys listed. */
export function without<T extends Record<string, unknown>>(o: T | undefined, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([k]) => !keys.includes(k)));
}

/** The last lines of a wid run, for failure messages. */
export const tail = (r: WidResult): string => `exit ${r.code}\n${r.stderr.split('\n').slice(-15).join('\n')}`;
