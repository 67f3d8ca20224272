/**
 * Bad input across every command and provider: exit 2 (1 where the environment is at fault), a message
 * naming the input, no cloud or cluster client even built (so no request of any kind), no file
 * written. Control characters, newlines and YAML metacharacters inside values are rejected, never
 * passed on. (test/cli/bad-input.test.ts holds the offline setup cases.)
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Factory } from '../../src/cli/factory.js';
import { main } from '../../src/cli/main.js';
import { testIO } from '../helpers/io.js';

const tmp = mkdtempSync(join(tmpdir(), 'wid-badinput-'));
const real = join(tmp, 'real');
mkdirSync(real);
const link = join(tmp, 'link');
symlinkSync(real, link);
const linkedFile = join(tmp, 'linked-files');
mkdirSync(linkedFile);
symlinkSync(join(tmp, 'elsewhere.yaml'), join(linkedFile, 'pod.yaml'));
const aFile = join(tmp, 'a-file');
writeFileSync(aFile, 'x');
const tokenFile = join(tmp, 'not-a-token');
writeFileSync(tokenFile, 'hello world');
let count = 0;
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  console.log(`bad input: ${count} cases here (plus test/cli/bad-input.test.ts), each exit 2 or 1 with no client built and no file written`);
});

/** A factory that records every client asked for; bad input must ask for none. */
function recordingFactory(): Factory & { asked: string[] } {
  const asked: string[] = [];
  const refuse = (what: string) => async () => {
    asked.push(what);
    throw new Error(`test: ${what} client built`);
  };
  return { asked, aws: refuse('aws'), azure: refuse('azure'), gcp: refuse('gcp'), kube: refuse('kube') };
}

const SUB = '22222222-2222-2222-2222-222222222222';
const EKS_LIVE = ['setup', 'eks', '--cluster', 'prod', '--sa', 'app', '--yes'];
const AKS_LIVE = ['setup', 'aks', '--cluster', 'prod', '-g', 'rg', '--subscription', SUB, '--sa', 'app', '--identity', 'app-id', '--yes'];
const GKE_LIVE = ['setup', 'gke', '--cluster', 'prod', '--location', 'europe-west1', '--project', 'my-project', '--sa', 'app', '--yes'];
const NL = 'app\nkind: Secret';
const CTRL = 'app\u0007\u001b[31m';
const LONG = 'a'.repeat(300);

/** [name, args, text the error must contain, expected exit code] */
const cases: [string, string[], string, number?][] = [
  // setup eks, live
  ['eks live: --cluster with --account-id', [...EKS_LIVE, '--account-id', '111122223333'], '--account-id cannot be used with --cluster'],
  ['eks live: --cluster with --partition', [...EKS_LIVE, '--partition', 'aws'], '--partition cannot be used with --cluster'],
  ['eks live: empty --cluster', ['setup', 'eks', '--cluster', '', '--sa', 'app'], '--cluster "" is invalid'],
  ['eks live: SA name with a newline and YAML', [...EKS_LIVE.slice(0, 4), '--sa', NL, '--yes'], '--sa "app\\nkind: Secret" is invalid'],
  ['eks live: SA name with control characters', [...EKS_LIVE.slice(0, 4), '--sa', CTRL], '--sa'],
  ['eks live: namespace with a colon', [...EKS_LIVE, '-n', 'a:b'], '--namespace "a:b" is invalid'],
  ['eks live: role name over 64 characters', [...EKS_LIVE, '--role-name', LONG], '--role-name'],
  ['eks live: role name with YAML metacharacters', [...EKS_LIVE, '--role-name', 'a: {b}'], '--role-name'],
  ['eks live: policy ARN with a space', [...EKS_LIVE, '--attach-policy-arn', 'arn:aws:iam::aws:policy/Read Only'], '--attach-policy-arn'],
  ['eks live: policy ARN of another service', [...EKS_LIVE, '--attach-policy-arn', 'arn:aws:s3:::bucket'], '--attach-policy-arn'],
  ['eks live: region with a newline', [...EKS_LIVE, '--region', 'us-west-2\n'], '--region'],
  ['eks live: audience with whitespace', [...EKS_LIVE, '--audience', 'sts amazonaws com'], '--audience'],
  ['eks live: --out at a symlink', [...EKS_LIVE, '--out', link], 'is a symbolic link'],
  ['eks live: --out whose pod.yaml is a symlink', [...EKS_LIVE, '--out', linkedFile], 'pod.yaml is a symbolic link'],
  ['eks live: --out at a file', [...EKS_LIVE, '--out', aFile], 'it exists and is not a directory'],
  ['eks live: -o xml', [...EKS_LIVE, '-o', 'xml'], '--output "xml" is invalid'],
  ['eks live: WID_TIMEOUT_MS not a number', [...EKS_LIVE], 'WID_TIMEOUT_MS "soon" is invalid'],
  // setup aks, live
  ['aks live: --cluster with --issuer', [...AKS_LIVE, '--issuer', 'https://x.example/'], '--issuer cannot be used with --cluster'],
  ['aks live: --cluster with --tenant-id', [...AKS_LIVE, '--tenant-id', SUB], '--tenant-id cannot be used with --cluster'],
  ['aks live: identity name with a slash', [...AKS_LIVE.slice(0, -3), '--identity', 'a/b', '--yes'], '--identity "a/b" is invalid'],
  ['aks live: identity resource group with a newline', [...AKS_LIVE, '--identity-resource-group', 'rg\nx'], '--identity-resource-group'],
  ['aks live: --identity-resource-group offline', ['setup', 'aks', '--sa', 'a', '--identity-resource-group', 'rg', '--dry-run'], '--identity-resource-group needs --cluster'],
  ['aks live: subscription with braces', [...AKS_LIVE.slice(0, 6), '--subscription', `{${SUB}}`, '--sa', 'app', '--identity', 'app-id'], '--subscription'],
  ['aks live: scope with a query string', [...AKS_LIVE, '--role', 'Reader', '--scope', `/subscriptions/${SUB}?x=1`], '--scope'],
  ['aks live: role with a leading space', [...AKS_LIVE, '--role', ' Reader', '--scope', `/subscriptions/${SUB}`], '--role'],
  ['aks live: location in capitals', [...AKS_LIVE, '--location', 'West Europe'], '--location'],
  // setup gke, live
  ['gke live: --cluster with --workload-pool', [...GKE_LIVE, '--workload-pool', 'my-project.svc.id.goog'], '--workload-pool cannot be used with --cluster'],
  ['gke live: --cluster with --project-number', [...GKE_LIVE, '--project-number', '123456789012'], '--project-number cannot be used with --cluster'],
  ['gke live: --location without --cluster', ['setup', 'gke', '--sa', 'a', '--project', 'my-project', '--location', 'europe-west1', '--dry-run'], '--location needs --cluster'],
  ['gke live: location with a slash', [...GKE_LIVE.slice(0, 4), '--location', 'europe/west1', '--project', 'my-project', '--sa', 'app'], '--location'],
  ['gke live: GSA email with a newline', [...GKE_LIVE, '--gsa', 'a@my-project.iam.gserviceaccount.com\n'], '--gsa'],
  ['gke live: role with YAML metacharacters', [...GKE_LIVE, '--role', 'roles/{viewer}'], '--role'],
  ['gke live: project id over 30 characters', [...GKE_LIVE.slice(0, 6), '--project', `p${'x'.repeat(40)}`, '--sa', 'app'], '--project'],
  ['gke live: --mode direct with --gsa', [...GKE_LIVE, '--mode', 'direct', '--gsa', 'my-gsa'], '--gsa cannot be used with --mode direct'],
  // teardown
  ['teardown eks: missing --cluster', ['teardown', 'eks', '--sa', 'app'], "required option '--cluster <name>' not specified"],
  ['teardown eks: SA name with a newline', ['teardown', 'eks', '--cluster', 'prod', '--sa', NL], '--sa'],
  ['teardown eks: unknown flag', ['teardown', 'eks', '--cluster', 'prod', '--sa', 'app', '--force'], "unknown option '--force'"],
  ['teardown aks: scope without role', ['teardown', 'aks', '--cluster', 'prod', '-g', 'rg', '--subscription', SUB, '--sa', 'a', '--identity', 'app-id', '--scope', `/subscriptions/${SUB}`], '--scope given 1 times but --role 0 times'],
  ['teardown gke: bad mode', ['teardown', 'gke', '--cluster', 'prod', '--location', 'europe-west1', '--project', 'my-project', '--sa', 'a', '--mode', 'both'], '--mode "both" is invalid'],
  ['teardown: unknown provider', ['teardown', 'ecs', '--cluster', 'prod'], "unknown command 'ecs'"],
  // doctor
  ['doctor: unknown provider', ['doctor', 'ecs', '--sa', 'app'], 'provider "ecs" is invalid'],
  ['doctor: missing --sa', ['doctor'], 'missing required flag --sa'],
  ['doctor: namespace with control characters', ['doctor', '--sa', 'app', '-n', CTRL], '--namespace'],
  ['doctor: -o yaml', ['doctor', '--sa', 'app', '-o', 'yaml'], '--output "yaml" is invalid'],
  ['doctor: subscription not a GUID', ['doctor', 'aks', '--sa', 'app', '--subscription', 'prod'], '--subscription "prod" is invalid'],
  ['doctor: location not a GCP location', ['doctor', 'gke', '--sa', 'app', '--location', 'x'], '--location "x" is invalid'],
  // token inspect and audit
  ['token inspect: not a JWT', ['token', 'inspect', tokenFile], tokenFile],
  ['token inspect: missing file', ['token', 'inspect', join(tmp, 'nope')], join(tmp, 'nope')],
  ['token inspect: --jwks over http', ['token', 'inspect', tokenFile, '--jwks', 'http://example.com/jwks'], '--jwks'],
  ['audit: -n with --all-namespaces', ['audit', '-n', 'apps', '--all-namespaces'], '--all-namespaces'],
  ['audit: namespace with a newline', ['audit', '-n', 'a\nb'], '--namespace'],
  // environment at fault: exit 1
  ['eks offline: --out under a file (environment)', ['setup', 'eks', '--sa', 'a', '--issuer', 'https://oidc.example.com', '--account-id', '111122223333', '--dry-run', '--out', join(aFile, 'sub')], 'cannot write the manifests', 1],
];

describe('bad input over every command: exit 2, no client built, nothing written', () => {
  it('has at least 50 cases here', () => expect(cases.length).toBeGreaterThanOrEqual(50));

  for (const [name, args, expected, exit] of cases) {
    it(name, async () => {
      count++;
      const factory = recordingFactory();
      const io = testIO({ env: name.includes('WID_TIMEOUT_MS') ? { WID_TIMEOUT_MS: 'soon' } : {} });
      const before = readdirSync(tmp).sort();
      const code = await main(args, io, factory);
      expect(io.stderr).toContain(expected);
      expect(code).toBe(exit ?? 2);
      expect(factory.asked).toEqual([]);
      expect(io.stdout).toBe('');
      expect(readdirSync(tmp).sort()).toEqual(before);
      expect(existsSync(join(real, 'pod.yaml'))).toBe(false);
      // The bad value is quoted safely: no raw control character reaches the terminal.
      expect(io.stderr).not.toMatch(/[\u0007\u001b]/);
    });
  }
});
