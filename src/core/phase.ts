/**
 * A phase is one named step of a setup: it ensures one kind of cloud or cluster object.
 * - `build` (pure, offline): the desired documents, every step `ensure`.
 * - `plan` (live): reads the current state, and only reads, then decides create / update / noop.
 * - `apply` (live): carries out one planned step, one API call per change.
 * Teardown phases plan `delete` / `update` / `noop` steps and apply them the same way.
 */
import type { Binding, Provider, Step } from './plan.js';
import type { SetupRequest } from './request.js';

export interface LivePhase<R, C> {
  /** Stable kebab-case name, e.g. `oidc-provider`; part of the JSON plan contract. */
  name: string;
  /** Reads only: the steps that would bring the current state to the desired one. */
  plan(req: R, ctx: C): Promise<Step[]>;
  /** Carries out one step this phase planned. */
  apply(step: Step, req: R, ctx: C): Promise<void>;
  /**
   * Many bindings in one run: another binding applied this identical step. Brings this binding's
   * request up to date with what the step produced (e.g. a new identity's ids), reading only.
   */
  adopt?(step: Step, req: R, ctx: C): Promise<void>;
}

export interface Phase<R, C = never> extends Partial<LivePhase<R, C>> {
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

export interface ProviderModule<R extends SetupRequest, C = never> {
  id: Provider;
  /** The flag-independent facts of the binding: issuer, subject, audience. */
  binding(req: R): Binding;
  phases: Phase<R, C>[];
  manifestValues(req: R): ManifestValues;
  /** Adds to a Pod what this cloud's webhook would inject (for `--inject`), in place. */
  inject(pod: KubeObject, req: R): void;
}
