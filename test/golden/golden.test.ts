/**
 * Golden tests: the exact plan and manifests for fixed inputs. Regenerate with WID_UPDATE_GOLDEN=1
 * and review the diff; never edit a golden file to make a test pass without reading it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AKS_BASE, EKS_BASE, GKE_BASE, SUB, TENANT, run } from '../helpers/io.js';

const here = dirname(fileURLToPath(import.meta.url));
const update = process.env.WID_UPDATE_GOLDEN === '1';

interface Case {
  name: string;
  args: string[];
}

const cases: Case[] = [
  // The "Show" command.
  { name: 'eks-show', args: [...EKS_BASE, '--role-name', 's3-access-role', '-o', 'json'] },
  { name: 'eks-default-text', args: [...EKS_BASE] },
  {
    name: 'eks-full-inject',
    args: [
      ...EKS_BASE, '-n', 'apps', '--attach-policy-arn', 'arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess',
      '--attach-policy-arn', 'arn:aws:iam::111122223333:policy/team/app-extra', '--audience', 'sts.custom.example',
      '--token-expiration', '3600', '--sts-regional-endpoints', '--region', 'us-west-2', '--inject', '-o', 'json',
    ],
  },
  { name: 'eks-aws-cn', args: ['setup', 'eks', '--sa', 'app', '--issuer', 'https://oidc.eks.cn-north-1.amazonaws.com.cn/id/ABCDEF0123456789ABCDEF0123456789', '--account-id', '123456789012', '--partition', 'aws-cn', '--dry-run', '-o', 'yaml'] },
  {
    name: 'aks-show',
    args: [
      ...AKS_BASE, '--tenant-id', TENANT, '--location', 'westeurope',
      '--role', 'Storage Blob Data Reader', '--scope', `/subscriptions/${SUB}/resourceGroups/my-rg/providers/Microsoft.Storage/storageAccounts/mystore`,
      '--role', 'acdd72a7-3385-48ef-bd42-f606fba81ae7', '--scope', `/subscriptions/${SUB}`, '-o', 'json',
    ],
  },
  { name: 'aks-default-text', args: [...AKS_BASE] },
  { name: 'aks-inject', args: [...AKS_BASE, '--tenant-id', TENANT, '--principal-id', '44444444-4444-4444-4444-444444444444', '--role', 'Reader', '--scope', `/subscriptions/${SUB}/resourceGroups/my-rg`, '--inject', '-o', 'json'] },
  { name: 'gke-gsa', args: [...GKE_BASE, '-n', 'apps', '--gsa', 'my-gsa', '--role', 'roles/storage.objectViewer', '--role', 'roles/secretmanager.secretAccessor', '-o', 'json'] },
  { name: 'gke-gsa-other-project', args: [...GKE_BASE, '--gsa', 'shared-gsa@shared-project.iam.gserviceaccount.com', '--workload-pool', 'cluster-project.svc.id.goog', '-o', 'yaml'] },
  { name: 'gke-direct', args: [...GKE_BASE, '-n', 'apps', '--project-number', '123456789012', '--role', 'roles/storage.objectViewer', '-o', 'json'] },
  { name: 'gke-direct-text', args: [...GKE_BASE, '--mode', 'direct', '--project-number', '123456789012', '--issuer', 'https://container.googleapis.com/v1/projects/my-project/locations/us-central1/clusters/prod'] },
];

function golden(file: string, actual: string): void {
  if (update || !existsSync(file)) {
    if (!update) throw new Error(`golden file ${file} is missing; run with WID_UPDATE_GOLDEN=1 and review it`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

describe('golden plans and manifests', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const r = await run(c.args);
      expect(r.stderr).not.toContain('error');
      expect(r.code).toBe(0);
      const fmt = c.args.includes('json') ? 'json' : c.args.includes('yaml') ? 'plan.yaml' : 'yaml';
      golden(join(here, c.name, fmt === 'json' ? 'plan.json' : fmt === 'plan.yaml' ? 'plan.yaml' : 'manifests.yaml'), r.stdout);
      golden(join(here, c.name, 'stderr.txt'), r.stderr);
    });
  }
});
