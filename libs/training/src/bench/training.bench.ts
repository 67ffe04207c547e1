/**
 * Training-step throughput of each zoo model on each backend that loads here, next to the
 * backend's plain 1024×1024 matmul rate measured in the same run.
 *
 *   npx tsc -b libs/training && node libs/training/dist/bench/training.bench.js [--backends wasm,cpu] [--reps 10] [--models mlp]
 *   npm run bench training
 *
 * GFLOP/s of a step = Model.stepFlopsPerSample (forward + input and weight gradients of every
 * dense/conv/attention matmul, less the first layer's input gradient) × batch / step time.
 * Step time is the best of `reps` (10) timed steps after three warm-ups and includes copying
 * parameters in and the gradient out. Rates are computed from this process's CPU time
 * (process.cpuUsage: user + system), not wall time: wasm in Node runs on one thread, and CPU
 * time does not count the time spent waiting for a core on a loaded machine. Wall time is shown
 * beside it. The matmul rate is measured the same way right before each model (best of 3).
 * `--models a,b`: only the rows whose name starts with one of the given prefixes (default: all;
 * e.g. `--models 'mlp 784-256'` for the two small-MLP rows).
 */
import * as tf from '@tensorflow/tfjs';
import { activateBackend, BACKEND_ORDER, type BackendName } from '../backend.js';
import { buildModel } from '../build.js';
import type { Batch } from '../model.js';
import { Rng } from '../prng.js';

interface Case {
  name: string;
  spec: unknown;
  batch: number;
  /** Values per sample of x; token ids below `classes` when `tokens`. */
  xPer: number;
  classes: number;
  tokens?: boolean;
  /** Also run on the pure-JS cpu backend (slow models are skipped there). */
  onCpu: boolean;
}

const CASES: Case[] = [
  { name: 'mlp 784-256-128-10', spec: { kind: 'mlp', inputShape: [784], hidden: [256, 128], numClasses: 10 }, batch: 128, xPer: 784, classes: 10, onCpu: true },
  // The same model at the per-member step of the demo's job (global batch 1000 over 3 workers,
  // one micro-batch within the 250 ms budget); informational, the row above is the target's.
  { name: 'mlp 784-256-128-10, demo share', spec: { kind: 'mlp', inputShape: [784], hidden: [256, 128], numClasses: 10 }, batch: 334, xPer: 784, classes: 10, onCpu: false },
  { name: 'mlp 784-1024-1024-10', spec: { kind: 'mlp', inputShape: [784], hidden: [1024, 1024], numClasses: 10 }, batch: 256, xPer: 784, classes: 10, onCpu: false },
  {
    name: 'cnn mnist 32-64 c3, d128',
    spec: { kind: 'cnn', inputShape: [28, 28, 1], convs: [{ filters: 32 }, { filters: 64 }], dense: [128], numClasses: 10 },
    batch: 64,
    xPer: 784,
    classes: 10,
    onCpu: true,
  },
  {
    name: 'cnn cifar 32-64-128 c3, d256',
    spec: { kind: 'cnn', inputShape: [32, 32, 3], convs: [{ filters: 32 }, { filters: 64 }, { filters: 128 }], dense: [256], numClasses: 10 },
    batch: 64,
    xPer: 3072,
    classes: 10,
    onCpu: false,
  },
  {
    name: 'transformer d128 h4 L4 T64',
    spec: { kind: 'transformer-lm', vocabSize: 96, contextLength: 64, dModel: 128, heads: 4, layers: 4, mlpRatio: 4 },
    batch: 16,
    xPer: 64,
    classes: 96,
    tokens: true,
    onCpu: false,
  },
];

function batchFor(c: Case, seed: number): Batch {
  const rng = new Rng(seed);
  const x = c.tokens ? new Int32Array(c.batch * c.xPer) : new Float32Array(c.batch * c.xPer);
  for (let i = 0; i < x.length; i++) x[i] = c.tokens ? rng.below(c.classes) : rng.uniform();
  const ny = c.tokens ? c.batch * c.xPer : c.batch;
  const y = new Int32Array(ny);
  for (let i = 0; i < ny; i++) y[i] = rng.below(c.classes);
  return { x, y, n: c.batch };
}

/** Best (wall ms, CPU ms) of `reps` runs of `f` after `warm` warm-ups. */
function timeIt(f: () => void, reps: number, warm: number): { wall: number; cpu: number } {
  for (let i = 0; i < warm; i++) f();
  let wall = Infinity;
  let cpu = Infinity;
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    f();
    const dt = performance.now() - t0;
    const c = process.cpuUsage(c0);
    wall = Math.min(wall, dt);
    cpu = Math.min(cpu, (c.user + c.system) / 1000);
  }
  return { wall, cpu };
}

/** Plain n×n×n matmul rate (GFLOP/s by CPU time). */
function matmulGflops(n: number, reps: number): number {
  const a = tf.randomUniform([n, n], -1, 1, 'float32', 1);
  const b = tf.randomUniform([n, n], -1, 1, 'float32', 2);
  const { cpu } = timeIt(() => tf.tidy(() => void tf.matMul(a, b).dataSync()), reps, 1);
  tf.dispose([a, b]);
  return (2 * n ** 3) / (cpu / 1000) / 1e9;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const reps = Number(arg('reps') ?? 10);
  const models = arg('models')?.split(',');
  const wanted = (arg('backends')?.split(',') as BackendName[] | undefined) ?? [...BACKEND_ORDER];
  const rows: string[][] = [];
  for (const b of wanted) {
    const probe = await activateBackend(b);
    if (!probe.ok) {
      console.log(`backend ${b}: not available (${probe.reason})`);
      continue;
    }
    console.log(`backend ${b}: plain 1024×1024 matmul ${matmulGflops(1024, b === 'cpu' ? 1 : 3).toFixed(1)} GFLOP/s`);
    for (const c of CASES) {
      if (b === 'cpu' && !c.onCpu) continue;
      if (models && !models.some((p) => c.name.startsWith(p))) continue;
      const mm = matmulGflops(1024, b === 'cpu' ? 1 : 3);
      const model = await buildModel(c.spec);
      const params = model.init(1);
      const batch = batchFor(c, 1);
      const { wall, cpu } = timeIt(() => model.step(params, batch), b === 'cpu' ? 1 : reps, b === 'cpu' ? 1 : 3);
      const gflops = (model.stepFlopsPerSample * c.batch) / (cpu / 1000) / 1e9;
      rows.push([b, c.name, String(model.paramCount), String(c.batch), wall.toFixed(1), cpu.toFixed(1), ((c.batch * 1000) / cpu).toFixed(0), gflops.toFixed(1), mm.toFixed(1), `${((100 * gflops) / mm).toFixed(0)} %`]);
      console.log(`  ${c.name}: ${cpu.toFixed(1)} CPU ms/step (${wall.toFixed(1)} ms wall)`);
      model.dispose();
    }
  }
  const head = ['backend', 'model', 'params', 'batch', 'wall ms/step', 'CPU ms/step', 'samples/s', 'step GFLOP/s', 'matmul GFLOP/s', 'ratio'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((v, i) => v.padEnd(widths[i])).join(' | ')} |`;
  console.log();
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
  console.log(`\n(tfjs ${tf.version.tfjs}, node ${process.version}, ${reps} reps, best)`);
}

await main();
