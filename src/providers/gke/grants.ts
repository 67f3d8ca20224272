/**
 * wid's record of the Google IAM grants it added, kept in an annotation on the Kubernetes
 * ServiceAccount. IAM bindings carry no owner, so without it teardown could not tell a member wid
 * granted from the identical member someone granted before: with it, teardown removes only what wid
 * added. Setup writes the record BEFORE the grants (the ServiceAccount step runs first), so a crash
 * between the two leaves a record of a grant not made yet (harmless: teardown finds nothing to
 * remove), never a grant without a record. Pure.
 */

export const GRANTS_ANNOTATION = 'wid/gcp-grants';

/** One member wid added to one role of one IAM policy. */
export interface Grant {
  /** The policy's resource: `projects/P` or `projects/P/serviceAccounts/EMAIL`. */
  resource: string;
  role: string;
  member: string;
}

const key = (g: Grant): string => `${g.resource}\n${g.role}\n${g.member}`;

/** The union, without duplicates, in a stable order (so an unchanged record compares equal). */
export function mergeGrants(...lists: Grant[][]): Grant[] {
  const byKey = new Map<string, Grant>();
  for (const g of lists.flat()) byKey.set(key(g), { resource: g.resource, role: g.role, member: g.member });
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
}

export function formatGrants(grants: Grant[]): string {
  return JSON.stringify(mergeGrants(grants));
}

const isGrant = (v: unknown): v is Grant =>
  typeof v === 'object' && v !== null && ['resource', 'role', 'member'].every((k) => typeof (v as Record<string, unknown>)[k] === 'string');

/**
 * The record in a ServiceAccount's annotations: undefined when there is none; 'unreadable' when it
 * is not the JSON list wid writes (edited by hand, say), which teardown treats as no record.
 */
export function parseGrants(annotations: Record<string, string> | undefined): Grant[] | 'unreadable' | undefined {
  const raw = annotations?.[GRANTS_ANNOTATION];
  if (raw === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) && v.every(isGrant) ? mergeGrants(v) : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

export const recorded = (grants: Grant[], g: Grant): boolean => grants.some((r) => key(r) === key(g));
