/**
 * Progress of a long run on stderr: on a terminal, one line rewritten in place ("applying 120/300,
 * 2 failed"); elsewhere (CI logs), plain lines, one per finished item, and no control characters.
 */
import type { IO } from './io.js';
import type { CliStyle } from './style.js';

export class Progress {
  private phase = '';
  private total = 0;
  private done = 0;
  private failed = 0;
  private live: boolean;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly io: IO,
    private readonly style: CliStyle,
  ) {
    this.live = io.stderrIsTTY && io.env.TERM !== 'dumb';
  }

  start(phase: string, total: number): void {
    Object.assign(this, { phase, total, done: 0, failed: 0 });
    if (this.live && total > 0) {
      this.draw();
      // Redrawn on a timer too, so the line shows life while slow requests are in flight.
      this.timer = setInterval(() => this.draw(), 250);
      this.timer.unref?.();
    }
  }

  /** One item finished; `line` is printed for it off a terminal (and above the live line on one). */
  tick(result: 'ok' | 'failed', line?: string): void {
    this.done++;
    if (result === 'failed') this.failed++;
    if (this.live) {
      if (line !== undefined) this.io.err(`\r\x1b[K${line}\n`);
      this.draw();
    } else if (line !== undefined) {
      this.io.err(`${line}\n`);
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.live && this.total > 0) this.io.err('\r\x1b[K');
  }

  private draw(): void {
    const width = 24;
    const filled = this.total === 0 ? width : Math.round((this.done / this.total) * width);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    const failed = this.failed > 0 ? `, ${this.style.error(`${this.failed} failed`)}` : '';
    this.io.err(`\r\x1b[K${this.phase} ${bar} ${this.done}/${this.total}${failed}`);
  }
}
