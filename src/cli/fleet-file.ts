/**
 * The bindings file of `wid apply -f` / `wid teardown -f`: YAML, one entry per ServiceAccount binding,
 * each with `provider` and the same fields as `wid setup <provider>`'s flags (long names without the
 * dashes; a repeatable flag takes a list). Everything is checked here, offline, before any client is
 * built: a bad entry fails the whole file with exit 2 and nothing changed.
 *
 *   defaults:            # optional: fields every binding gets unless it sets them
 *     namespace: apps
 *   bindings:
 *     - provider: eks
 *       cluster: prod
 *       sa: s3-reader
 *       attach-policy-arn: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]
 */
import { readFileSync, statSync } from 'node:fs';
import type { Command, Option } from 'commander';
import { UsageError, WidError } from '../core/errors.js';
import type { Provider } from '../core/plan.js';
import { PROVIDERS } from '../core/plan.js';
import { collect } from './flags.js';
import type { RawOptions } from './request.js';

export interface FleetEntry {
  /** Position in the file (0-based). */
  index: number;
  provider: Provider;
  raw: RawOptions;
  /** e.g. `eks prod apps/s3-reader`. */
  label: string;
}

/** Fields that belong to the run, given once on the command line, never per binding. */
const RUN_FIELDS = new Set(['dry-run', 'yes', 'output', 'out', 'color', 'no-color', 'templates', 'inject', 'help']);
const MAX_BINDINGS = 5000;

type Value = string | boolean | string[];

/**
 * Reads and checks the file. `commands(provider)` gives the setup and teardown commands whose flags
 * define the fields; `check(provider, raw)` runs the provider's offline flag checks.
 */
export function readFleetFile(path: string, commands: (p: Provider) => Command[], check: (p: Provider, raw: RawOptions) => void, parseYaml: (text: string) => unknown): FleetEntry[] {
  let text: string;
  try {
    if (!statSync(path).isFile()) throw new UsageError('WID_E_INPUT_INVALID', `--file ${path} is not a file`, { flag: '--file' });
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof WidError) throw e;
    throw new UsageError('WID_E_INPUT_INVALID', `--file ${path} cannot be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { flag: '--file' });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new UsageError('WID_E_INPUT_INVALID', `--file ${path} is not valid YAML: ${(e as Error).message.split('\n')[0]}`, { flag: '--file' });
  }
  const top = asMap(doc, `--file ${path}`, 'a mapping with a "bindings" list');
  for (const k of Object.keys(top)) {
    if (!['apiVersion', 'kind', 'defaults', 'bindings'].includes(k)) throw bad(`--file ${path}: unknown top-level field ${JSON.stringify(k)} (expected defaults, bindings)`);
  }
  const defaults = top.defaults === undefined ? {} : asMap(top.defaults, 'defaults', 'a mapping of fields');
  if (!Array.isArray(top.bindings) || top.bindings.length === 0) throw bad(`--file ${path}: "bindings" must be a non-empty list`);
  if (top.bindings.length > MAX_BINDINGS) throw bad(`--file ${path}: ${top.bindings.length} bindings; at most ${MAX_BINDINGS} per file`);

  const entries = top.bindings.map((b: unknown, index: number) => entry(index, { ...defaults, ...asMap(b, `bindings[${index}]`, 'a mapping of fields') }, commands, check));
  const seen = new Map<string, number>();
  for (const e of entries) {
    const key = [e.provider, e.raw.kubeconfig ?? '', e.raw.context ?? '', e.raw.cluster, e.raw.namespace, e.raw.sa].join('\n');
    const first = seen.get(key);
    if (first !== undefined) throw bad(`bindings[${e.index}] (${e.label}) repeats bindings[${first}]: one ServiceAccount, one binding per file`);
    seen.set(key, e.index);
  }
  return entries;
}

function entry(index: number, fields: Record<string, unknown>, commands: (p: Provider) => Command[], check: (p: Provider, raw: RawOptions) => void): FleetEntry {
  const where = `bindings[${index}]`;
  const provider = fields.provider;
  if (typeof provider !== 'string' || !(PROVIDERS as readonly string[]).includes(provider)) {
    throw bad(`${where}.provider ${JSON.stringify(provider ?? null)} is invalid: expected one of ${PROVIDERS.join(', ')}`);
  }
  const p = provider as Provider;
  const options = new Map<string, Option>();
  for (const cmd of commands(p)) for (const o of cmd.options) if (o.long && !options.has(o.long.slice(2))) options.set(o.long.slice(2), o);
  const raw: Record<string, unknown> = {};
  for (const o of options.values()) if (o.defaultValue !== undefined) raw[o.attributeName()] = o.defaultValue;
  raw.output = 'text';
  raw.color = false;
  for (const [key, value] of Object.entries(fields)) {
    if (key === 'provider') continue;
    if (RUN_FIELDS.has(key)) throw bad(`${where}.${key}: set it once on the command line (--${key}), not per binding`);
    const o = options.get(key);
    if (!o) throw bad(`${where}.${key}: unknown field for ${p} (the fields are wid setup ${p}'s flags: ${[...options.keys()].filter((k) => !RUN_FIELDS.has(k)).join(', ')})`);
    raw[o.attributeName()] = convert(`${where}.${key}`, o, value);
  }
  const r = raw as unknown as RawOptions;
  const label = `${p} ${r.cluster ?? '?'} ${r.namespace}/${r.sa ?? '?'}`;
  if (r.cluster === undefined) throw bad(`${where} (${label}): cluster is required (wid apply works on live clusters; wid setup --dry-run plans offline)`);
  if (r.sa === undefined) throw bad(`${where} (${label}): sa is required`);
  try {
    check(p, r);
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(e.code, `${where} (${label}): ${e.message}`, { ...(e.flag === undefined ? {} : { flag: e.flag }), ...(e.hint === undefined ? {} : { hint: e.hint }) });
    throw e;
  }
  return { index, provider: p, raw: r, label };
}

function convert(where: string, o: Option, value: unknown): Value {
  const repeatable = o.parseArg === collect;
  if (o.isBoolean()) {
    if (typeof value !== 'boolean') throw bad(`${where} ${JSON.stringify(value)} is invalid: expected true or false`);
    return value;
  }
  if (repeatable) {
    const list = Array.isArray(value) ? value : [value];
    return list.map((x, i) => scalar(`${where}[${i}]`, x));
  }
  if (o.optional && typeof value === 'boolean') return value;
  return scalar(where, value);
}

function scalar(where: string, value: unknown): string {
  if (typeof value === 'string') return value;
  // A number is taken as written only when YAML kept every digit (an account id with leading zeros must be quoted).
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value);
  throw bad(`${where} ${JSON.stringify(value)} is invalid: expected a string${typeof value === 'number' ? ' (quote it)' : ''}`);
}

function asMap(v: unknown, where: string, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${where} is invalid: expected ${what}`);
  return v as Record<string, unknown>;
}

const bad = (message: string): UsageError => new UsageError('WID_E_INPUT_INVALID', message, { flag: '--file' });
