/**
 * Small concurrency tools for running many bindings at once (`wid apply -f`): a bounded pool, a lock
 * per resource, group commit for read-modify-writes of one shared document, and a read cache.
 */

/** Runs `fn` over `items` with at most `limit` at a time; settles every item, in input order. */
export async function pool<T, U>(items: T[], limit: number, fn: (item: T, index: number) => Promise<U>): Promise<PromiseSettledResult<U>[]> {
  const results: PromiseSettledResult<U>[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i]!, i) };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** One holder at a time per key; waiters go in arrival order. */
export class KeyedLock {
  private tails = new Map<string, Promise<void>>();

  async run<T>(key: string | undefined, fn: () => Promise<T>): Promise<T> {
    if (key === undefined) return fn();
    const before = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = before.then(() => mine);
    this.tails.set(key, tail);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** A change to a document: the new document, or undefined when nothing needs changing. */
export type Change<D> = (doc: D) => D | undefined;

interface Waiter<D> {
  change: Change<D>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: changes to one document (an IAM policy, say) that arrive while a write of it is in
 * flight are combined and written together by the next read-modify-write, so N bindings sharing a
 * policy cost about two writes instead of N serialised ones. Each caller's promise settles with the
 * write that carried its change.
 */
export class GroupCommit {
  private queues = new Map<string, { waiting: Waiter<unknown>[]; running: boolean }>();

  run<D>(key: string, change: Change<D>, commit: (combined: Change<D>) => Promise<unknown>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let q = this.queues.get(key);
      if (!q) this.queues.set(key, (q = { waiting: [], running: false }));
      q.waiting.push({ change: change as Change<unknown>, resolve, reject });
      if (!q.running) void this.drain(key, q, commit as (combined: Change<unknown>) => Promise<unknown>);
    });
  }

  private async drain(key: string, q: { waiting: Waiter<unknown>[]; running: boolean }, commit: (combined: Change<unknown>) => Promise<unknown>): Promise<void> {
    q.running = true;
    while (q.waiting.length > 0) {
      const batch = q.waiting.splice(0);
      const combined: Change<unknown> = (doc) => {
        let current = doc;
        let changed = false;
        for (const w of batch) {
          const next = w.change(current);
          if (next !== undefined) {
            current = next;
            changed = true;
          }
        }
        return changed ? current : undefined;
      };
      try {
        await commit(combined);
        for (const w of batch) w.resolve();
      } catch (e) {
        for (const w of batch) w.reject(e);
      }
    }
    q.running = false;
    this.queues.delete(key);
  }
}

/**
 * A read-through cache over an API object: while `active()` says so, each call of a read method
 * (by name) with the same arguments is made once and its answer shared (a copy to each caller).
 * Writes, and reads once planning is over, go straight through.
 */
export function cachedReads<T extends object>(api: T, isRead: (method: string) => boolean, active: () => boolean): T {
  const cache = new Map<string, Promise<unknown>>();
  return new Proxy(api, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || typeof prop !== 'string' || !isRead(prop)) return value;
      return (...args: unknown[]) => {
        if (!active()) return (value as (...a: unknown[]) => unknown).apply(target, args);
        const key = `${prop}\n${JSON.stringify(args)}`;
        let hit = cache.get(key);
        if (!hit) cache.set(key, (hit = Promise.resolve((value as (...a: unknown[]) => unknown).apply(target, args))));
        return hit.then(copy);
      };
    },
  });
}

function copy<V>(v: V): V {
  try {
    return structuredClone(v);
  } catch {
    return v;
  }
}
