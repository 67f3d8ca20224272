/**
 * The plan is data: built without side effects, rendered by src/output, applied by other code.
 * `-o json` prints it; CI scripts depend on this shape, so change it only by adding fields.
 */
export type Provider = 'eks' | 'aks' | 'gke';
export const PROVIDERS = ['eks', 'aks', 'gke'] as const;

/**
 * `ensure`: the current state was not read (offline), so the step makes sure `desired` exists.
 * `create` / `update` / `noop` / `delete`: decided from a real read.
 */
export type Action = 'create' | 'update' | 'noop' | 'delete' | 'ensure';

export interface Step {
  /** Stable kebab-case phase name, e.g. `iam-role`. */
  phase: string;
  action: Action;
  /** ARN, resource id or email of the thing this step ensures. */
  resource: string;
  /** The document that is sent (trust policy, federated credential body, IAM binding), not a summary. */
  desired: Record<string, unknown>;
  /**
   * Fields of `desired` that only the cloud can supply and that are filled in when the step is
   * applied, keyed by dotted path, with where the value comes from.
   */
  pending?: Record<string, string>;
  /** Why the action was chosen, when it is not obvious (e.g. why a noop leaves something in place). */
  note?: string;
}

export interface Binding {
  /** The OIDC issuer, byte for byte; null when the cloud supplies it (GKE without --issuer). */
  issuer: string | null;
  namespace: string;
  serviceAccount: string;
  subject: string;
  audience: string;
}

export interface Plan {
  apiVersion: 'wid/v1';
  kind: 'Plan';
  provider: Provider;
  dryRun: boolean;
  binding: Binding;
  steps: Step[];
  /** The ServiceAccount, then the check Pod. */
  manifests: Record<string, unknown>[];
}
