/**
 * `npm run bench`: measures wid and prints the numbers, side by side, in one run. Never a test: it
 * passes or fails nothing on timing (it exits non-zero only when a command it runs fails).
 *
 *   1. start-up: `wid --help`, `wid --version` and an offline `wid setup eks … --dry-run`, against
 *      `node -e 0` (medians of interleaved runs; targets 1.5x, 1.5x and 2x);
 *   2. requests: reads and writes per provider setup against the emulators, on a first run and on a
 *      re-run (target: zero writes on the re-run);
 *   3. fleet: `wid apply -f FILE` over 300 bindings with 20 ms per emulator request (skipped until
 *      `wid apply` exists).
 *
 * Options: --runs N (start-up runs per command, default 20, at least 10), --only startup,requests,fleet,
 * --quick (fleet at the default concurrency only). WID_BENCH_CPU_PROF=DIR writes CPU profiles of the fleet runs.
 * scripts/run-bench.mjs bundles this file with the emulators and runs it from the package root.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { startAwsEmulator, type AwsEmulator } from '../test/emulators/aws/server.js';
import { startAzureEmulator, type AzureEmulator } from '../test/emulators/azure/server.js';
import { startGcpEmulator, type GcpEmulator } from '../test/emulators/gcp/server.js';
import { startKubeEmulator, type KubeEmulator } from '../test/emulators/kube/server.js';
import * as cloudEnv from '../test/helpers/cloud-env.js';

const ROOT = process.cwd();
const BIN = join(ROOT, 'bin', 'wid.js');
const GUARD = join(ROOT, 'test', 'helpers', 'loopback-guard.mjs');
if (!existsSync(BIN) || !existsSync(GUARD)) throw new Error(`run from the package root (npm run bench); no bin/wid.js in ${ROOT}`);

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
};
const RUNS = Math.max(10, Number(opt('--runs')) || 20);
const ONLY = new Set((opt('--only') ?? 'startup,requests,fleet').split(','));

// ---- helpers ----

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const ms = (x: number): string => `${x.toFixed(1)} ms`;
const pad = (s: string, n: number): string => s.padEnd(n);
const lpad = (s: string, n: number): string => s.padStart(n);

/** Environment for a wid run against the emulators: nothing from the shell (the same as test/helpers/wid.ts baseEnv). */
function baseEnv(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    AWS_EC2_METADATA_DISABLED: 'true',
    METADATA_SERVER_DETECTION: 'none',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    NO_COLOR: '1',
    // Every connection beyond 127.0.0.1 fails and is reported.
    NODE_OPTIONS: `--import=${pathToFileURL(GUARD).href}`,
  };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** Peak resident set size of the wid process, when measured. */
  peakRssMb?: number;
  /** CPU time (user + system) of the wid process, when GNU time measured it. */
  cpuMs?: number;
}

const TIME = '/usr/bin/time';
const hasGnuTime = existsSync(TIME) && spawnSync(TIME, ['-v', 'true'], { encoding: 'utf8' }).stderr?.includes('Maximum resident set size');

/** Runs wid (asynchronously: the emulators live in this process). With rss, measures its peak RSS too. */
function wid(argv: string[], env: Record<string, string>, opts: { rss?: boolean } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const rssFile = join(tmpdir(), `wid-bench-rss-${process.pid}-${Date.now()}`);
    const viaTime = opts.rss === true && hasGnuTime;
    // WID_BENCH_CPU_PROF=DIR: the measured runs (fleet) write V8 CPU profiles there (open in Chrome DevTools or speedscope).
    const prof = opts.rss === true && process.env.WID_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.WID_BENCH_CPU_PROF}`] : [];
    const [cmd, cmdArgs] = viaTime ? [TIME, ['-v', '-o', rssFile, process.execPath, ...prof, BIN, ...argv]] : [process.execPath, [...prof, BIN, ...argv]];
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, cmdArgs, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // Without GNU time: sample the high-water mark the kernel keeps for the process.
    let hwmKb = 0;
    const sampler =
      opts.rss === true && !viaTime
        ? setInterval(() => {
            try {
              const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
              if (m) hwmKb = Math.max(hwmKb, Number(m[1]));
            } catch {
              // gone already
            }
          }, 25)
        : undefined;
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      if (sampler) clearInterval(sampler);
      let peakRssMb: number | undefined;
      let cpuMs: number | undefined;
      if (viaTime) {
        const report = readFileSync(rssFile, 'utf8');
        const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(report);
        const user = /User time \(seconds\): ([\d.]+)/.exec(report);
        const sys = /System time \(seconds\): ([\d.]+)/.exec(report);
        if (user && sys) cpuMs = (Number(user[1]) + Number(sys[1])) * 1000;
        rmSync(rssFile, { force: true });
        if (m) peakRssMb = Number(m[1]) / 1024;
      } else if (hwmKb > 0) peakRssMb = hwmKb / 1024;
      if (stderr.includes('wid-test: blocked connection')) reject(new Error(`wid tried to leave 127.0.0.1:\n${stderr}`));
      else resolve({ code, stdout, stderr, wallMs, ...(peakRssMb === undefined ? {} : { peakRssMb }), ...(cpuMs === undefined ? {} : { cpuMs }) });
    });
  });
}

function must(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stderr.split('\n').slice(-20).join('\n')}`);
  return r;
}

// ---- 1. start-up ----

const DRY_RUN = ['setup', 'eks', '--sa', 's3-access-sa', '--issuer', 'https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE', '--account-id', '111122223333', '--role-name', 's3-access-role', '--dry-run'];

interface StartCase {
  label: string;
  argv: string[];
  target?: number;
}

const START_CASES: StartCase[] = [
  { label: 'node -e 0', argv: ['-e', '0'] },
  { label: 'wid --help', argv: [BIN, '--help'], target: 1.5 },
  { label: 'wid --version', argv: [BIN, '--version'], target: 1.5 },
  { label: 'wid setup eks … --dry-run (offline)', argv: [BIN, ...DRY_RUN], target: 2 },
];

/** Wall time of each case, run round-robin (so a busy spell hits every case alike), after two warm-up rounds. */
function timeStartup(env: NodeJS.ProcessEnv): number[][] {
  const times: number[][] = START_CASES.map(() => []);
  for (let round = -2; round < RUNS; round++) {
    START_CASES.forEach((c, i) => {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(process.execPath, c.argv, { env, stdio: 'ignore' });
      const dt = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) throw new Error(`${c.label} exited ${r.status}`);
      if (round >= 0) times[i]!.push(dt);
    });
  }
  return times;
}

function printStartup(title: string, times: number[][]): void {
  console.log(title);
  console.log(`  ${pad('command', 40)}${lpad('median', 10)}${lpad('min', 10)}${lpad('ratio', 8)}  target`);
  const base = median(times[0]!);
  START_CASES.forEach((c, i) => {
    const m = median(times[i]!);
    const ratio = m / base;
    const verdict = c.target === undefined ? '' : `${c.target}x  ${ratio <= c.target ? 'met' : 'NOT met'}`;
    console.log(`  ${pad(c.label, 40)}${lpad(ms(m), 10)}${lpad(ms(Math.min(...times[i]!)), 10)}${lpad(`${ratio.toFixed(2)}x`, 8)}  ${verdict}`);
  });
  console.log('');
}

function startup(): void {
  for (const c of START_CASES.slice(1)) {
    const r = spawnSync(process.execPath, c.argv, { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    if (r.status !== 0) throw new Error(`${c.label} exited ${r.status}: ${r.stderr}`);
  }
  // A clean environment: NODE_OPTIONS would load code into every process, and NODE_EXTRA_CA_CERTS makes
  // Node parse the whole CA file at every start (measured below), a cost that is not wid's.
  const clean: NodeJS.ProcessEnv = { ...process.env };
  delete clean.NODE_OPTIONS;
  delete clean.NODE_EXTRA_CA_CERTS;
  printStartup(`1. Start-up: wall time over ${RUNS} interleaved runs each (after 2 warm-up rounds); environment without NODE_OPTIONS and NODE_EXTRA_CA_CERTS`, timeStartup(clean));
  if (process.env.NODE_EXTRA_CA_CERTS) {
    const withCa = { ...clean, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS };
    printStartup(`   The same with this shell's NODE_EXTRA_CA_CERTS=${process.env.NODE_EXTRA_CA_CERTS} (Node reads it at every start, adding a fixed cost to each row)`, timeStartup(withCa));
  }
}

// ---- 2. requests per provider setup ----

interface Counts {
  cloudReads: number;
  cloudWrites: number;
  auth: number;
  kubeReads: number;
  kubeWrites: number;
}

interface Provider {
  name: string;
  /** Starts the emulators, seeds a cluster, and returns the setup command, the env and the counters. */
  start(tmp: string): Promise<{ argv: string[]; env: Record<string, string>; counts(): Counts; reset(): void; close(): Promise<void> }>;
}

const kubeCounts = (kube: KubeEmulator): Pick<Counts, 'kubeReads' | 'kubeWrites'> => ({
  kubeReads: kube.log.filter((r) => !r.write).length,
  kubeWrites: kube.log.filter((r) => r.write).length,
});

async function kubeFor(tmp: string, name: string, issuer?: string): Promise<{ kube: KubeEmulator; kubeconfig: string }> {
  const kube = await startKubeEmulator(issuer === undefined ? {} : { issuer });
  const kubeconfig = join(tmp, `${name}.kubeconfig`);
  kube.writeKubeconfig(kubeconfig, { context: name });
  return { kube, kubeconfig };
}

const AWS = { account: '111122223333', issuer: 'https://oidc.eks.us-west-2.amazonaws.com/id/BENCH0123456789ABCDEF0123456789AB' };
const AZ = { sub: '0b1f6471-1bf0-4dda-aec3-cb9272f09590', rg: 'prod-rg', issuer: 'https://westeurope.oic.prod-aks.azure.com/72f988bf-86f1-41af-91ab-2d7cd011db47/9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f/' };
const GCP = { project: 'my-project', number: '123456789012', location: 'europe-west1' };

const awsEnv = (aws: AwsEmulator): Record<string, string> => cloudEnv.awsEnv(aws);
const azureEnv = (azure: AzureEmulator): Record<string, string> => cloudEnv.azureEnv(azure, AZ.sub);
const gcpEnv = (gcp: GcpEmulator, tmp: string): Record<string, string> => cloudEnv.gcpEnv(gcp, tmp, GCP.project, GCP.number);
const seedAws = (aws: AwsEmulator): void => aws.seedCluster({ name: 'prod', region: 'us-west-2', issuer: AWS.issuer });
const seedAzure = (azure: AzureEmulator): void => void azure.seedCluster({ subscription: AZ.sub, resourceGroup: AZ.rg, name: 'prod', location: 'westeurope', issuer: AZ.issuer });
function seedGcp(gcp: GcpEmulator): void {
  gcp.seedProject({ projectId: GCP.project, projectNumber: GCP.number });
  gcp.seedCluster({ project: GCP.project, location: GCP.location, name: 'prod', workloadPool: `${GCP.project}.svc.id.goog` });
}

const PROVIDERS: Provider[] = [
  {
    name: 'eks',
    async start(tmp) {
      const aws = await startAwsEmulator({ accountId: AWS.account });
      const { kube, kubeconfig } = await kubeFor(tmp, 'eks', AWS.issuer);
      const reset = (): void => {
        aws.reset();
        kube.reset();
        seedAws(aws);
      };
      reset();
      return {
        argv: ['setup', 'eks', '--cluster', 'prod', '--sa', 's3-access-sa', '-n', 'apps', '--create-namespace', '--role-name', 's3-access-role', '--attach-policy-arn', 'arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess', '--yes'],
        env: { ...baseEnv(tmp), ...awsEnv(aws), KUBECONFIG: kubeconfig },
        counts: () => ({
          cloudReads: aws.log.filter((r) => !r.write && r.service !== 'sts').length,
          cloudWrites: aws.log.filter((r) => r.write).length,
          auth: aws.log.filter((r) => !r.write && r.service === 'sts').length,
          ...kubeCounts(kube),
        }),
        reset,
        close: async () => void (await Promise.all([aws.close(), kube.close()])),
      };
    },
  },
  {
    name: 'aks',
    async start(tmp) {
      const azure = await startAzureEmulator();
      const { kube, kubeconfig } = await kubeFor(tmp, 'aks', AZ.issuer);
      const reset = (): void => {
        azure.reset();
        kube.reset();
        seedAzure(azure);
      };
      reset();
      return {
        argv: ['setup', 'aks', '--cluster', 'prod', '-g', AZ.rg, '--sa', 'my-sa', '-n', 'apps', '--create-namespace', '--identity', 'my-id', '--role', 'Reader', '--scope', `/subscriptions/${AZ.sub}/resourceGroups/${AZ.rg}`, '--yes'],
        env: { ...baseEnv(tmp), ...azureEnv(azure), KUBECONFIG: kubeconfig },
        counts: () => ({
          cloudReads: azure.log.filter((r) => r.kind === 'arm' && !r.write).length,
          cloudWrites: azure.log.filter((r) => r.write).length,
          auth: azure.log.filter((r) => r.kind !== 'arm').length,
          ...kubeCounts(kube),
        }),
        reset,
        close: async () => void (await Promise.all([azure.close(), kube.close()])),
      };
    },
  },
  {
    name: 'gke',
    async start(tmp) {
      const gcp = await startGcpEmulator();
      const { kube, kubeconfig } = await kubeFor(tmp, 'gke');
      const reset = (): void => {
        gcp.reset();
        kube.reset();
        seedGcp(gcp);
      };
      reset();
      return {
        argv: ['setup', 'gke', '--cluster', 'prod', '--location', GCP.location, '--sa', 'my-ksa', '-n', 'apps', '--create-namespace', '--gsa', 'app-gsa', '--role', 'roles/storage.objectViewer', '--yes'],
        env: { ...baseEnv(tmp), ...gcpEnv(gcp, tmp), KUBECONFIG: kubeconfig },
        counts: () => ({
          cloudReads: gcp.log.filter((r) => r.api !== 'sts' && !r.write).length,
          cloudWrites: gcp.log.filter((r) => r.write).length,
          auth: gcp.log.filter((r) => r.api === 'sts').length,
          ...kubeCounts(kube),
        }),
        reset,
        close: async () => void (await Promise.all([gcp.close(), kube.close()])),
      };
    },
  },
];

async function requests(): Promise<void> {
  console.log('2. Requests per provider setup against the emulators (cloud reads / cloud writes / token requests; Kubernetes reads / writes)');
  console.log(`  ${pad('setup', 12)}${pad('run', 9)}${lpad('cloud R', 9)}${lpad('cloud W', 9)}${lpad('token', 7)}${lpad('kube R', 8)}${lpad('kube W', 8)}${lpad('wall', 11)}  target`);
  const tmp = mkdtempSync(join(tmpdir(), 'wid-bench-'));
  try {
    for (const p of PROVIDERS) {
      const rig = await p.start(tmp);
      try {
        for (const run of ['first', 're-run']) {
          const before = rig.counts();
          const r = must(await wid(rig.argv, rig.env), `wid ${rig.argv.join(' ')}`);
          const after = rig.counts();
          const d = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof Counts]])) as unknown as Counts;
          const writes = d.cloudWrites + d.kubeWrites;
          const verdict = run === 're-run' ? `0 writes  ${writes === 0 ? 'met' : `NOT met (${writes})`}` : '';
          console.log(
            `  ${pad(`${p.name}`, 12)}${pad(run, 9)}${lpad(String(d.cloudReads), 9)}${lpad(String(d.cloudWrites), 9)}${lpad(String(d.auth), 7)}${lpad(String(d.kubeReads), 8)}${lpad(String(d.kubeWrites), 8)}${lpad(ms(r.wallMs), 11)}  ${verdict}`,
          );
        }
      } finally {
        await rig.close();
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  console.log('');
}

// ---- 3. fleet: wid apply (enable by building `wid apply`; nothing to change here) ----------------
//
// `wid apply -f FILE [--concurrency N] --yes -o json`, FILE being YAML
// `bindings: [ {provider: eks|aks|gke, <setup's long flag names without -- as keys, lists for repeatable flags>} ]`.
// 300 bindings (100 per provider), 20 ms added to every request on all four emulators, run with the
// default concurrency and with --concurrency 1; prints wall time, the ideal (requests x 20 ms /
// concurrency) and the wid process's peak RSS. Skipped while `wid apply --help` does not print
// apply's own help (Commander answers `--help` after an unknown command with the program's help, exit 0).
// Each binding names its cluster's kubeconfig (one Kubernetes emulator per provider).

const FLEET = { perProvider: 100, latencyMs: 20 };

function fleetBindings(kubeconfigs: Record<'eks' | 'aks' | 'gke', string>): Array<Record<string, string | string[]>> {
  const bindings: Array<Record<string, string | string[]>> = [];
  for (let i = 1; i <= FLEET.perProvider; i++) {
    bindings.push({ provider: 'eks', cluster: 'prod', kubeconfig: kubeconfigs.eks, namespace: 'apps', sa: `eks-app-${i}`, 'role-name': `eks-app-${i}-role`, 'attach-policy-arn': ['arn:aws:iam::aws:policy/ReadOnlyAccess'] });
    bindings.push({ provider: 'aks', cluster: 'prod', kubeconfig: kubeconfigs.aks, 'resource-group': AZ.rg, namespace: 'apps', sa: `aks-app-${i}`, identity: `aks-app-${i}-id`, role: ['Reader'], scope: [`/subscriptions/${AZ.sub}/resourceGroups/${AZ.rg}`] });
    bindings.push({ provider: 'gke', cluster: 'prod', kubeconfig: kubeconfigs.gke, location: GCP.location, project: GCP.project, namespace: 'apps', sa: `gke-app-${i}`, gsa: `gke-app-${i}-gsa`, role: ['roles/storage.objectViewer'] });
  }
  return bindings;
}

async function fleet(): Promise<void> {
  console.log(`3. Fleet: wid apply, ${FLEET.perProvider * 3} bindings (${FLEET.perProvider} per provider), ${FLEET.latencyMs} ms added to every emulator request`);
  // Commander answers `--help` after an unknown command with the program's own help and exit 0, so
  // the exit code alone does not tell: apply's help must be the one printed.
  const probe = spawnSync(process.execPath, [BIN, 'apply', '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  if (probe.status !== 0 || !probe.stdout.startsWith('Usage: wid apply')) {
    console.log(`  skipped: \`wid apply\` does not exist yet (\`wid apply --help\` exited ${probe.status} and printed ${JSON.stringify(probe.stdout.split('\n')[0])})\n`);
    return;
  }
  // The default concurrency, as apply's help states it (`(default: "N")`, maybe wrapped), for the ideal time.
  const option = /--concurrency[\s\S]*?(?=\n {2}-|\n\n|$)/.exec(probe.stdout)?.[0] ?? '';
  const defaultConcurrency = Number(/\(default:\s*"?(\d+)"?\)/.exec(option)?.[1] ?? NaN);

  const tmp = mkdtempSync(join(tmpdir(), 'wid-bench-fleet-'));
  const aws = await startAwsEmulator({ accountId: AWS.account });
  const azure = await startAzureEmulator();
  const gcp = await startGcpEmulator();
  const eks = await kubeFor(tmp, 'eks', AWS.issuer);
  const aks = await kubeFor(tmp, 'aks', AZ.issuer);
  const gke = await kubeFor(tmp, 'gke');
  const kubes = [eks.kube, aks.kube, gke.kube];
  const requestCount = (): number => aws.log.length + azure.log.length + gcp.log.length + kubes.reduce((n, k) => n + k.log.length, 0);
  const writeCount = (): number => aws.writes().length + azure.writes().length + gcp.writes().length + kubes.reduce((n, k) => n + k.writes().length, 0);
  const file = join(tmp, 'fleet.yaml');
  writeFileSync(file, stringify({ bindings: fleetBindings({ eks: eks.kubeconfig, aks: aks.kubeconfig, gke: gke.kubeconfig }) }));
  const env = { ...baseEnv(tmp), ...awsEnv(aws), ...azureEnv(azure), ...gcpEnv(gcp, tmp) };
  // WID_BENCH_CPU_PROF=DIR: each fleet run of wid writes a V8 CPU profile there (for chrome://inspect or speedscope).
  const fresh = (): void => {
    for (const e of [aws, azure, gcp, ...kubes]) e.reset();
    seedAws(aws);
    aws.seedPolicy('arn:aws:iam::aws:policy/ReadOnlyAccess');
    seedAzure(azure);
    seedGcp(gcp);
    for (const k of kubes) k.seedNamespace('apps');
    // reset() sets the latency back to 0.
    for (const e of [aws, azure, gcp, ...kubes]) e.faults.latencyMs = FLEET.latencyMs;
  };
  try {
    // wid CPU: user + system time of the wid process; emulators CPU: this process's, where all four emulators
    // run. When either approaches the wall time, that process, not the 20 ms per request, sets the pace.
    console.log(`  ${pad('run', 36)}${lpad('requests', 9)}${lpad('writes', 8)}${lpad('wall', 11)}${lpad('ideal', 11)}${lpad('wall/ideal', 12)}${lpad('peak RSS', 11)}${lpad('wid CPU', 11)}${lpad('emul. CPU', 11)}`);
    for (const [label, extra, concurrency] of [
      [`default concurrency (${Number.isNaN(defaultConcurrency) ? '?' : defaultConcurrency})`, [], defaultConcurrency],
      ['--concurrency 1', ['--concurrency', '1'], 1],
    ] as const) {
      // --quick: only the default concurrency (for profiling and quick looks; the table then lacks the comparison).
      if (process.argv.includes('--quick') && concurrency === 1) continue;
      for (const run of ['first', 're-run']) {
        if (run === 'first') fresh();
        const [r0, w0] = [requestCount(), writeCount()];
        const cpu0 = process.cpuUsage();
        const r = must(await wid(['apply', '-f', file, ...extra, '--yes', '-o', 'json'], env, { rss: true }), `wid apply ${extra.join(' ')}`);
        const [requests, writes] = [requestCount() - r0, writeCount() - w0];
        const used = process.cpuUsage(cpu0);
        const emulatorCpuMs = (used.user + used.system) / 1000;
        const ideal = Number.isNaN(concurrency) ? NaN : (requests * FLEET.latencyMs) / concurrency;
        console.log(
          `  ${pad(`${label}, ${run}`, 36)}${lpad(String(requests), 9)}${lpad(String(writes), 8)}${lpad(ms(r.wallMs), 11)}${lpad(Number.isNaN(ideal) ? '?' : ms(ideal), 11)}${lpad(Number.isNaN(ideal) ? '?' : `${(r.wallMs / ideal).toFixed(2)}x`, 12)}${lpad(r.peakRssMb === undefined ? '?' : `${r.peakRssMb.toFixed(0)} MB`, 11)}${lpad(r.cpuMs === undefined ? '?' : ms(r.cpuMs), 11)}${lpad(ms(emulatorCpuMs), 11)}`,
        );
      }
    }
  } finally {
    await Promise.all([aws.close(), azure.close(), gcp.close(), ...kubes.map((k) => k.close())]);
    rmSync(tmp, { recursive: true, force: true });
  }
  console.log('');
}

// ---- main ----

console.log(`wid bench: Node ${process.version}, ${availableParallelism()} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} (timings on a busy machine are noisy; compare rows of one run)\n`);
if (ONLY.has('startup')) startup();
if (ONLY.has('requests')) await requests();
if (ONLY.has('fleet')) await fleet();
