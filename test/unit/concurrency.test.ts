import { describe, expect, it } from 'vitest';
import { GroupCommit, KeyedLock, cachedReads, pool } from '../../src/core/concurrency.js';

const tick = (ms = 1): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('pool', () => {
  it('never runs more than the limit at once, and settles every item in input order', async () => {
    let running = 0;
    let peak = 0;
    const results = await pool([5, 1, 4, 2, 3, 0], 2, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await tick(n);
      running--;
      if (n === 4) throw new Error('four');
      return n * 10;
    });
    expect(peak).toBe(2);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([50, 10, 'four', 20, 30, 0]);
  });
});

describe('KeyedLock', () => {
  it('serialises holders of one key, in arrival order, and lets other keys through', async () => {
    const lock = new KeyedLock();
    const events: string[] = [];
    const hold = (key: string | undefined, name: string, ms: number) =>
      lock.run(key, async () => {
        events.push(`${name}+`);
        await tick(ms);
        events.push(`${name}-`);
      });
    await Promise.all([hold('a', 'a1', 5), hold('a', 'a2', 1), hold('b', 'b1', 1), hold(undefined, 'free', 1)]);
    expect(events.indexOf('a1-')).toBeLessThan(events.indexOf('a2+'));
    expect(events.indexOf('b1+')).toBeLessThan(events.indexOf('a1-'));
    expect(events.indexOf('free+')).toBeLessThan(events.indexOf('a1-'));
  });

  it('releases the key when the holder throws', async () => {
    const lock = new KeyedLock();
    await expect(lock.run('k', async () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    await expect(lock.run('k', async () => 'next')).resolves.toBe('next');
  });
});

describe('GroupCommit', () => {
  it('combines changes that arrive while a write is in flight into one read-modify-write', async () => {
    const gc = new GroupCommit();
    let doc: string[] = [];
    let writes = 0;
    const commit = async (change: (d: string[]) => string[] | undefined): Promise<void> => {
      const read = [...doc];
      await tick(5);
      const next = change(read);
      if (next) {
        writes++;
        doc = next;
      }
    };
    const add = (m: string) => gc.run<string[]>('policy', (d) => (d.includes(m) ? undefined : [...d, m]), commit);
    await Promise.all(Array.from({ length: 20 }, (_, i) => add(`m${i}`)));
    expect(doc.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`).sort());
    expect(writes).toBe(2);
    // Nothing to change: no write.
    await add('m3');
    expect(writes).toBe(2);
  });

  it('fails every change of a batch whose write failed, and goes on with the next batch', async () => {
    const gc = new GroupCommit();
    let fail = true;
    const commit = async (): Promise<void> => {
      await tick(2);
      if (fail) {
        fail = false;
        throw new Error('409');
      }
    };
    const results = await Promise.allSettled([gc.run('k', () => ['a'], commit), gc.run('k', () => ['b'], commit)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
  });
});

describe('cachedReads', () => {
  it('makes each read once while active, hands out copies, and passes writes and later reads through', async () => {
    const calls: string[] = [];
    const api = {
      async getThing(id: string) {
        calls.push(`get ${id}`);
        return { id, tags: ['a'] };
      },
      async putThing(id: string) {
        calls.push(`put ${id}`);
      },
    };
    let active = true;
    const cached = cachedReads(api, (m) => m.startsWith('get'), () => active);
    const [a, b] = await Promise.all([cached.getThing('x'), cached.getThing('x')]);
    a.tags.push('mutated');
    expect(b.tags).toEqual(['a']);
    await cached.getThing('y');
    await cached.putThing('x');
    await cached.putThing('x');
    active = false;
    await cached.getThing('x');
    expect(calls).toEqual(['get x', 'get y', 'put x', 'put x', 'get x']);
  });
});
