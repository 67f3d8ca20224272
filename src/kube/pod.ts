/**
 * Small, pure edits of a Pod object that follow the webhooks' rules: add what is absent, keep what
 * is there.
 */
import type { KubeObject } from '../core/phase.js';

type Obj = Record<string, unknown>;

function spec(pod: KubeObject): Obj {
  const s = pod.spec;
  if (s && typeof s === 'object' && !Array.isArray(s)) return s as Obj;
  const created: Obj = {};
  pod.spec = created;
  return created;
}

/** Init containers first, then containers, as the webhooks walk them. */
export function podContainers(pod: KubeObject): Obj[] {
  const s = spec(pod);
  const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter((c): c is Obj => !!c && typeof c === 'object') : []);
  return [...list(s.initContainers), ...list(s.containers)];
}

/** Appends each `[name, value]` whose name the container's env lacks; existing entries win. */
export function ensureContainerEnv(container: Obj, vars: [string, string][]): void {
  const env = Array.isArray(container.env) ? (container.env as Obj[]) : [];
  for (const [name, value] of vars) {
    if (!env.some((e) => e.name === name)) env.push({ name, value });
  }
  if (env.length > 0) container.env = env;
}

/** Adds a volume mount unless one with that name exists. */
export function ensureMount(container: Obj, mount: Obj): void {
  const mounts = Array.isArray(container.volumeMounts) ? (container.volumeMounts as Obj[]) : [];
  if (!mounts.some((m) => m.name === mount.name)) mounts.push(mount);
  container.volumeMounts = mounts;
}

/** Puts a volume first in the Pod's volumes unless one with that name exists. */
export function ensureVolume(pod: KubeObject, volume: Obj): void {
  const s = spec(pod);
  const volumes = Array.isArray(s.volumes) ? (s.volumes as Obj[]) : [];
  if (!volumes.some((v) => v.name === volume.name)) volumes.unshift(volume);
  s.volumes = volumes;
}
