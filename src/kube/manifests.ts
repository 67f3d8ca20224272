/**
 * The ServiceAccount and check Pod, rendered from templates. Templates are parsed as YAML and values
 * are set on the parsed objects, never spliced into text, so no input can inject YAML.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { RuntimeError, UsageError } from '../core/errors.js';
import type { KubeObject, ProviderModule } from '../core/phase.js';
import type { Provider } from '../core/plan.js';
import { checkPodName } from '../core/naming.js';
import type { SetupRequest } from '../core/request.js';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';

/** The templates shipped with wid: `<package>/templates/<provider>/`. */
export const BUILTIN_TEMPLATES = fileURLToPath(new URL('../../templates/', import.meta.url));

export const TEMPLATE_FILES = { serviceAccount: 'serviceaccount.yaml', pod: 'pod.yaml' } as const;

export interface Template {
  path: string;
  object: KubeObject;
}

export interface Templates {
  serviceAccount: Template;
  pod: Template;
}

/**
 * Finds each template: in `--templates DIR` as `DIR/<provider>/<file>` or `DIR/<file>`, else the
 * built-in one. Overrides go file by file, so a DIR holding only pod.yaml keeps the built-in ServiceAccount.
 */
export function loadTemplates(provider: Provider, overrideDir?: string): Templates {
  if (overrideDir !== undefined) {
    if (!existsSync(overrideDir) || !statSync(overrideDir).isDirectory()) {
      throw new UsageError('WID_E_INPUT_INVALID', `--templates ${JSON.stringify(overrideDir)} is invalid: not a directory`, { flag: '--templates' });
    }
  }
  const find = (file: string): { path: string; user: boolean } => {
    if (overrideDir !== undefined) {
      for (const p of [join(overrideDir, provider, file), join(overrideDir, file)]) {
        if (existsSync(p)) return { path: p, user: true };
      }
    }
    return { path: join(BUILTIN_TEMPLATES, provider, file), user: false };
  };
  return {
    serviceAccount: readTemplate(find(TEMPLATE_FILES.serviceAccount), 'ServiceAccount'),
    pod: readTemplate(find(TEMPLATE_FILES.pod), 'Pod'),
  };
}

/** Templates already read and checked, by path: a run with many bindings reads each file once. */
const readTemplates = new Map<string, Template>();

function readTemplate(at: { path: string; user: boolean }, kind: 'ServiceAccount' | 'Pod'): Template {
  const key = `${kind}\n${at.path}`;
  const known = readTemplates.get(key);
  if (known) return { path: known.path, object: structuredClone(known.object) };
  const template = parseTemplate(at, kind);
  readTemplates.set(key, template);
  return { path: template.path, object: structuredClone(template.object) };
}

function parseTemplate(at: { path: string; user: boolean }, kind: 'ServiceAccount' | 'Pod'): Template {
  const bad = (rule: string): never => {
    const message = `template ${at.path} is invalid: ${rule}`;
    if (at.user) throw new UsageError('WID_E_TEMPLATE_INVALID', message, { flag: '--templates' });
    throw new RuntimeError('WID_E_TEMPLATE_INVALID', message, { hint: 'the built-in templates are damaged; reinstall wid' });
  };
  let text: string;
  try {
    text = readFileSync(at.path, 'utf8');
  } catch (e) {
    return bad(`cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) return bad('not YAML');
  const real = docs.filter((d) => d.contents !== null);
  if (real.length !== 1) return bad(`expected exactly one YAML document, found ${real.length}`);
  const doc = real[0]!;
  if (doc.errors.length > 0) return bad(`YAML error: ${doc.errors[0]!.message.split('\n')[0]}`);
  const object: unknown = doc.toJS();
  if (!isObject(object)) return bad('expected a mapping at the top level');
  if (object.kind !== kind) return bad(`expected kind: ${kind}, found ${JSON.stringify(object.kind ?? null)}`);
  if (object.apiVersion !== 'v1') return bad(`expected apiVersion: v1, found ${JSON.stringify(object.apiVersion ?? null)}`);
  if (object.metadata !== undefined && !isObject(object.metadata)) return bad('metadata must be a mapping');
  for (const key of ['labels', 'annotations']) {
    const m = (object.metadata as Record<string, unknown> | undefined)?.[key];
    if (m !== undefined && (!isObject(m) || Object.values(m).some((v) => typeof v !== 'string'))) {
      return bad(`metadata.${key} must map names to strings (quote values such as "true")`);
    }
  }
  if (kind === 'Pod') {
    const spec = object.spec;
    if (!isObject(spec) || !Array.isArray(spec.containers) || spec.containers.length === 0 || !spec.containers.every(isObject)) {
      return bad('a Pod template needs spec.containers with at least one container');
    }
  }
  return { path: at.path, object };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Metadata in a stable order: name, namespace, labels, annotations, then whatever else the template has. */
function metadata(
  template: KubeObject,
  name: string,
  namespace: string,
  labels: Record<string, string>,
  annotations: Record<string, string>,
): Record<string, unknown> {
  const t = (template.metadata ?? {}) as Record<string, unknown>;
  const { name: _n, namespace: _ns, labels: tl, annotations: ta, ...rest } = t;
  const mergedLabels = { ...(tl as Record<string, string> | undefined), ...labels };
  const mergedAnnotations = { ...(ta as Record<string, string> | undefined), ...annotations };
  return {
    name,
    namespace,
    ...(Object.keys(mergedLabels).length > 0 ? { labels: mergedLabels } : {}),
    ...(Object.keys(mergedAnnotations).length > 0 ? { annotations: mergedAnnotations } : {}),
    ...rest,
  };
}

/** The ServiceAccount (first, so it exists before any Pod that names it) and the check Pod. */
export function renderManifests<R extends SetupRequest>(provider: ProviderModule<R>, req: R, templates: Templates): KubeObject[] {
  const values = provider.manifestValues(req);
  const sa = structuredClone(templates.serviceAccount.object);
  const serviceAccount: KubeObject = {
    apiVersion: sa.apiVersion,
    kind: sa.kind,
    metadata: metadata(sa, req.serviceAccount, req.namespace, { [MANAGED_BY_LABEL]: 'wid' }, values.serviceAccountAnnotations),
    ...without(sa, ['apiVersion', 'kind', 'metadata']),
  };
  const p = structuredClone(templates.pod.object);
  const spec = { serviceAccountName: req.serviceAccount, ...without(p.spec as KubeObject, ['serviceAccountName']) };
  const pod: KubeObject = {
    apiVersion: p.apiVersion,
    kind: p.kind,
    metadata: metadata(p, checkPodName(req.serviceAccount), req.namespace, { [MANAGED_BY_LABEL]: 'wid', ...values.podLabels }, {}),
    ...without(p, ['apiVersion', 'kind', 'metadata', 'spec']),
    spec,
  };
  if (req.inject) provider.inject(pod, req);
  return [serviceAccount, pod];
}

function without(o: KubeObject, keys: string[]): KubeObject {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));
}
