import { describe, expect, it } from 'vitest';
import { Progress } from '../../src/cli/progress.js';
import { styleFor } from '../../src/cli/style.js';
import { testIO } from '../helpers/io.js';

describe('Progress', () => {
  it('off a terminal: one plain line per finished item, no control characters', () => {
    const io = testIO();
    const p = new Progress(io, styleFor(io, true));
    p.start('applying', 3);
    p.tick('ok', '✓ bindings[0] eks prod apps/a: 3 changes');
    p.tick('failed', '✗ bindings[1] aks prod apps/b: failed');
    p.tick('ok');
    p.stop();
    expect(io.stderr).toBe('✓ bindings[0] eks prod apps/a: 3 changes\n✗ bindings[1] aks prod apps/b: failed\n');
    expect(io.stdout).toBe('');
  });

  it('on a terminal: a line rewritten in place with the count and failures, cleared at the end', () => {
    const io = testIO({ tty: true, env: { NO_COLOR: '1' } });
    const p = new Progress(io, styleFor(io, true));
    p.start('applying', 2);
    p.tick('failed', 'x');
    p.tick('ok');
    p.stop();
    expect(io.stderr).toContain('\r\x1b[Kapplying ░░░░░░░░░░░░░░░░░░░░░░░░ 0/2');
    expect(io.stderr).toContain('\r\x1b[Kx\n');
    expect(io.stderr).toContain('1/2, 1 failed');
    expect(io.stderr).toContain('2/2, 1 failed');
    expect(io.stderr.endsWith('\r\x1b[K')).toBe(true);
  });
});
