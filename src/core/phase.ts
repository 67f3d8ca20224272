/**
 * A phase is one named step of a setup: it ensures one kind of cloud object. Offline, a phase only
 * builds the desired documents (every step is `ensure`); the live providers add observe and apply.
 */
import type { Binding, Provider, Step } from './plan.js';
import type { SetupRequest } from './request.js';

export interface Phase<R> {
  /** Stable kebab-case name, e.g. `oidc-provider`; part of the JSON plan contract. */
  name: string;
  description: string;
  /** Pure: the steps this phase would take, with action `ensure`. */
  build(req: R): Step[];
}

/** A Kubernetes object as plain data (a parsed YAML document). */
export type KubeObject = Record<string, unknown>;

/** What a provider adds to the generic ServiceAccount and Pod. */
export interface ManifestValues {
  serviceAccountAnnotations: Record<string, string>;
  podLabels: Record<string, string>;
}

export interface ProviderModule<R extends SetupRequest> {
  id: Provider;
  /** The flag-independent facts of the binding: issuer, subject, audience. */
  binding(req: R): Binding;
  phases: Phase<R>[];
  manifestValues(req: R): ManifestValues;
  /** Adds to a Pod what this cloud's webhook would inject (for `--inject`), in place. */
  inject(pod: KubeObject, req: R): void;
}
