/**
 * Editing IAM policies member by member, keeping every other binding, member and condition exactly.
 * Pure. Only unconditional bindings are wid's: a conditional binding with the same role grants less,
 * so it neither counts as the grant nor is ever changed.
 */
import type { IamPolicy, PolicyBinding } from './client.js';

const unconditional = (b: PolicyBinding, role: string): boolean => b.role === role && b.condition === undefined;

export function hasMember(policy: IamPolicy, role: string, member: string): boolean {
  return (policy.bindings ?? []).some((b) => unconditional(b, role) && b.members.includes(member));
}

/** The policy with `member` granted `role`; the same object's content otherwise. */
export function addMember(policy: IamPolicy, role: string, member: string): IamPolicy {
  const bindings = (policy.bindings ?? []).map((b) => ({ ...b, members: [...b.members] }));
  const target = bindings.find((b) => unconditional(b, role));
  if (target) {
    if (!target.members.includes(member)) target.members.push(member);
  } else {
    bindings.push({ role, members: [member] });
  }
  return withVersion({ ...policy, bindings });
}

/** The policy without `member` in `role` (an emptied binding is dropped). */
export function removeMember(policy: IamPolicy, role: string, member: string): IamPolicy {
  const bindings = (policy.bindings ?? [])
    .map((b) => (unconditional(b, role) ? { ...b, members: b.members.filter((m) => m !== member) } : b))
    .filter((b) => b.members.length > 0);
  return withVersion({ ...policy, bindings });
}

/** Roles whose unconditional binding holds `member`. */
export function rolesOf(policy: IamPolicy, member: string): string[] {
  return (policy.bindings ?? []).filter((b) => b.condition === undefined && b.members.includes(member)).map((b) => b.role);
}

/** Writing a policy with conditions needs version 3 (a version 1 write would drop them). */
function withVersion(policy: IamPolicy): IamPolicy {
  const conditional = (policy.bindings ?? []).some((b) => b.condition !== undefined);
  return conditional ? { ...policy, version: 3 } : policy;
}
