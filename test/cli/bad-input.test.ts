/**
 * Bad input: each case exits 2, names the flag (or file) and the rule, prints no manifests and writes
 * nothing (--out DIR is never created).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AKS_BASE, EKS_BASE, GKE_BASE, SUB, run } from '../helpers/io.js';

const tmp = mkdtempSync(join(tmpdir(), 'wid-bad-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const badTemplates = join(tmp, 'bad-templates');
mkdirSync(join(badTemplates, 'eks'), { recursive: true });
writeFileSync(join(badTemplates, 'eks', 'pod.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: []}\n');
const wrongKind = join(tmp, 'wrong-kind');
mkdirSync(wrongKind);
writeFileSync(join(wrongKind, 'serviceaccount.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n');
const twoDocs = join(tmp, 'two-docs');
mkdirSync(twoDocs);
writeFileSync(join(twoDocs, 'pod.yaml'), 'apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a, image: b}]}\n---\nkind: Pod\n');
const aFile = join(tmp, 'a-file');
writeFileSync(aFile, 'not a directory');

/** Replaces the value after `flag` in `args` (or appends flag + value). */
function withFlag(args: string[], flag: string, value?: string): string[] {
  const i = args.indexOf(flag);
  if (i >= 0 && value !== undefined) return [...args.slice(0, i + 1), value, ...args.slice(i + 2)];
  return value === undefined ? [...args, flag] : [...args, flag, value];
}

function without(args: string[], flag: string, hasValue = true): string[] {
  const i = args.indexOf(flag);
  return i < 0 ? args : [...args.slice(0, i), ...args.slice(i + (hasValue ? 2 : 1))];
}

const rg = `/subscriptions/${SUB}/resourceGroups/my-rg`;

/** [name, args, text the error must contain] */
const cases: [string, string[], string][] = [
  ['eks account id too short', withFlag(EKS_BASE, '--account-id', '1234'), '--account-id "1234" is invalid: an AWS account id is exactly 12 digits'],
  ['eks account id not digits', withFlag(EKS_BASE, '--account-id', 'abcdefghijkl'), '--account-id'],
  ['eks unknown partition', withFlag(EKS_BASE, '--partition', 'aws-eu'), '--partition "aws-eu" is invalid: expected one of aws, aws-cn, aws-us-gov'],
  ['eks role name with a space', withFlag(EKS_BASE, '--role-name', 'bad role'), '--role-name'],
  ['eks role name over 64 characters', withFlag(EKS_BASE, '--role-name', 'r'.repeat(65)), '1 to 64 characters'],
  ['eks policy that is not an ARN', withFlag(EKS_BASE, '--attach-policy-arn', 'AmazonS3ReadOnlyAccess'), '--attach-policy-arn'],
  ['eks policy in another partition', withFlag(EKS_BASE, '--attach-policy-arn', 'arn:aws-cn:iam::aws:policy/ReadOnlyAccess'), 'partition aws-cn but the role is in aws'],
  ['eks token expiration below 600', withFlag(EKS_BASE, '--token-expiration', '599'), '--token-expiration "599" is invalid: the token lifetime must be between 600 and 86400 seconds'],
  ['eks token expiration above 86400', withFlag(EKS_BASE, '--token-expiration', '86401'), '--token-expiration'],
  ['eks token expiration with a unit', withFlag(EKS_BASE, '--token-expiration', '1h'), 'whole number of seconds'],
  ['eks sts-regional-endpoints not a boolean', withFlag(EKS_BASE, '--sts-regional-endpoints', 'yes'), '--sts-regional-endpoints "yes" is invalid: expected true or false'],
  ['eks region with underscores', withFlag(EKS_BASE, '--region', 'us_west_2'), '--region'],
  ['eks empty audience', withFlag(EKS_BASE, '--audience', ''), '--audience'],
  ['issuer over http', withFlag(EKS_BASE, '--issuer', 'http://oidc.example.com'), '--issuer "http://oidc.example.com" is invalid: an issuer URL must use https://'],
  ['issuer with a query', withFlag(EKS_BASE, '--issuer', 'https://oidc.example.com/id/x?a=b'), 'must not have a query string'],
  ['issuer with a fragment', withFlag(EKS_BASE, '--issuer', 'https://oidc.example.com/id/x#top'), 'must not have a fragment'],
  ['issuer that is not a URL', withFlag(EKS_BASE, '--issuer', 'oidc.example.com'), 'not a URL'],
  ['issuer with whitespace', withFlag(EKS_BASE, '--issuer', ' https://oidc.example.com'), 'must not contain whitespace'],
  ['namespace with uppercase and underscore', withFlag(EKS_BASE, '-n', 'Bad_NS'), '--namespace "Bad_NS" is invalid: a namespace must be a DNS-1123 label'],
  ['namespace over 63 characters', withFlag(EKS_BASE, '-n', 'a'.repeat(64)), '--namespace'],
  ['sa name in uppercase', withFlag(EKS_BASE, '--sa', 'S3Access'), '--sa "S3Access" is invalid: a ServiceAccount name must be a DNS-1123 subdomain'],
  ['sa name with an underscore', withFlag(EKS_BASE, '--sa', 's3_access'), '--sa'],
  ['missing --account-id off a terminal', without(EKS_BASE, '--account-id'), 'missing required flag --account-id'],
  ['missing --sa off a terminal', without(EKS_BASE, '--sa'), 'missing required flag --sa'],
  ['missing --issuer off a terminal', without(EKS_BASE, '--issuer'), 'missing required flag --issuer'],
  ['unknown output format', withFlag(EKS_BASE, '-o', 'table'), '--output "table" is invalid: expected one of text, json, yaml'],
  ['apply without --dry-run', without(EKS_BASE, '--dry-run', false), 'applying needs the cluster lookup'],
  ['unknown flag', withFlag(EKS_BASE, '--frobnicate'), "unknown option '--frobnicate'"],
  ['unknown provider', ['setup', 'ecs', '--sa', 'x', '--dry-run'], "unknown command 'ecs'"],
  ['aks client id not a GUID', withFlag(AKS_BASE, '--client-id', 'my-client'), '--client-id "my-client" is invalid: expected a GUID'],
  ['aks tenant id not a GUID', withFlag(AKS_BASE, '--tenant-id', 'contoso.onmicrosoft.com'), '--tenant-id'],
  ['aks subscription not a GUID', withFlag(AKS_BASE, '--subscription', 'my-sub'), '--subscription'],
  ['aks principal id not a GUID', withFlag(AKS_BASE, '--principal-id', '1234'), '--principal-id'],
  ['aks resource group with a slash', withFlag(AKS_BASE, '-g', 'bad/rg'), '--resource-group "bad/rg" is invalid'],
  ['aks identity name too short', withFlag(AKS_BASE, '--identity', 'a'), '--identity "a" is invalid: a managed identity name is 3 to 128'],
  ['aks location with spaces', withFlag(AKS_BASE, '--location', 'West Europe'), '--location'],
  ['aks --role without --scope', withFlag(AKS_BASE, '--role', 'Reader'), '--role given 1 times but --scope 0 times'],
  ['aks --scope without --role', withFlag(AKS_BASE, '--scope', rg), '--scope given 1 times but --role 0 times'],
  ['aks scope that is not a resource id', withFlag(withFlag(AKS_BASE, '--role', 'Reader'), '--scope', '/subscription/x'), '--scope "/subscription/x" is invalid'],
  ['aks scope whose subscription is not a GUID', withFlag(withFlag(AKS_BASE, '--role', 'Reader'), '--scope', '/subscriptions/prod'), 'the subscription in a scope must be a GUID'],
  ['aks role definition id malformed', withFlag(withFlag(AKS_BASE, '--role', '/providers/Microsoft.Authorization/roleDefinitions/xyz'), '--scope', rg), '--role'],
  ['aks --inject without --tenant-id', withFlag(AKS_BASE, '--inject'), '--inject needs --tenant-id'],
  ['aks missing --client-id off a terminal', without(AKS_BASE, '--client-id'), 'missing required flag --client-id'],
  ['gke project id with uppercase', withFlag(GKE_BASE, '--project', 'My_Project'), '--project "My_Project" is invalid'],
  ['gke gsa short name too short', withFlag(GKE_BASE, '--gsa', 'ab'), '--gsa "ab" is invalid'],
  ['gke gsa in a non-IAM domain', withFlag(GKE_BASE, '--gsa', 'someone@gmail.com'), '--gsa "someone@gmail.com" is invalid'],
  ['gke --gsa with --mode direct', withFlag(withFlag(GKE_BASE, '--mode', 'direct'), '--gsa', 'my-gsa'), '--gsa cannot be used with --mode direct'],
  ['gke unknown mode', withFlag(GKE_BASE, '--mode', 'both'), '--mode "both" is invalid: expected one of gsa, direct'],
  ['gke role without roles/ prefix', withFlag(withFlag(GKE_BASE, '--project-number', '123456789012'), '--role', 'storage.admin'), '--role "storage.admin" is invalid'],
  ['gke --inject', withFlag(withFlag(GKE_BASE, '--gsa', 'my-gsa'), '--inject'), '--inject does not apply to gke'],
  ['gke direct mode without --project-number', GKE_BASE, 'missing required flag --project-number'],
  ['gke project number not digits', withFlag(GKE_BASE, '--project-number', 'my-project'), '--project-number'],
  ['gke workload pool malformed', withFlag(withFlag(GKE_BASE, '--gsa', 'my-gsa'), '--workload-pool', 'my-project.pool'), '--workload-pool'],
  ['gke issuer over http', withFlag(withFlag(GKE_BASE, '--gsa', 'my-gsa'), '--issuer', 'http://x.example'), '--issuer'],
  ['templates dir that does not exist', withFlag(EKS_BASE, '--templates', join(tmp, 'nope')), '--templates'],
  ['pod template without containers', withFlag(EKS_BASE, '--templates', badTemplates), 'a Pod template needs spec.containers'],
  ['serviceaccount template of the wrong kind', withFlag(EKS_BASE, '--templates', wrongKind), 'expected kind: ServiceAccount, found "ConfigMap"'],
  ['pod template with two documents', withFlag(EKS_BASE, '--templates', twoDocs), 'expected exactly one YAML document, found 2'],
];

describe('bad input: exit 2, named flag, nothing written', () => {
  it('has at least 30 cases', () => expect(cases.length).toBeGreaterThanOrEqual(30));

  for (const [name, args, expected] of cases) {
    it(name, async () => {
      const out = join(tmp, name.replace(/\W+/g, '-'));
      const r = await run([...args, '--out', out]);
      expect(r.stderr).toContain(expected);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(existsSync(out)).toBe(false);
    });
  }

  it('--out naming an existing file', async () => {
    const r = await run([...EKS_BASE, '--out', aFile]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--out ${JSON.stringify(aFile)} is invalid: it exists and is not a directory`);
    expect(r.stdout).toBe('');
  });

  it('usage errors carry a hint', async () => {
    const r = await run(without(EKS_BASE, '--account-id'));
    expect(r.stderr).toContain('hint: pass --account-id <value>');
  });
});
