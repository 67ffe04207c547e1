#!/usr/bin/env node
/**
 * `npm run demo`: the main job on one machine. Finds Postgres and NATS (or says how to get
 * them), starts a coordinator and local worker processes, and shows them online; then imports
 * MNIST, submits a training job and follows it to the end (see training.ts).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminApi, CoordinatorProcess, WorkerProcess } from '@gradpool/testing';
import { ensureServices } from './services.js';
import { runTraining, type TrainingOptions } from './training.js';
import { bold, dim, table } from './print.js';

interface DemoOptions extends TrainingOptions {
  workers: number;
  onlyOnline: boolean;
  ownNats: boolean;
}

/** A commander parser for an integer in [1, max]. */
function intUpTo(max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`expected an integer from 1 to ${max}`);
    return n;
  };
}

function momentum(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError('expected a number in [0, 1)');
  return n;
}

function positiveFloat(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 10) throw new InvalidArgumentError('expected a number in (0, 10]');
  return n;
}

/** Calls `probe` every 250 ms until it returns a value, `timeoutMs` passes or `signal` aborts. */
async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number, signal: AbortSignal, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal.throwIfAborted();
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise<void>((resolve) => {
      const onAbort = () => (clearTimeout(t), resolve());
      const t = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), 250);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function parseArgs(argv: string[]): DemoOptions {
  const cmd = new Command('npm run demo --')
    .description('Start a coordinator and local workers, train a model on MNIST, print a summary.')
    .option('-w, --workers <n>', 'number of worker processes', intUpTo(64), 3)
    .addOption(new Option('-m, --model <kind>', 'zoo model to train').choices(['mlp', 'cnn']).default('mlp'))
    .addOption(new Option('-c, --codec <codec>', 'gradient codec').choices(['fp32', 'fp16', 'bf16', 'int8', 'topk']).default('fp32'))
    .option('--epochs <n>', 'passes over the training data', intUpTo(1000), 5)
    .option('--batch <n>', 'global batch size in samples (independent of --workers)', intUpTo(1_000_000), 1000)
    .option('--lr <rate>', "Adam's learning rate", positiveFloat, 5e-3)
    .option('--local-steps <n>', 'local steps per round (DiLoCo): each worker takes n Adam steps on its share of a round, then the workers average the change (global batch = a whole round)', intUpTo(10_000), 1)
    .option('--outer-lr <rate>', 'with --local-steps: the learning rate of the outer Nesterov step on the averaged change (1 with momentum 0: the parameters averaged; DiLoCo: 0.7 and 0.9)', positiveFloat, 1)
    .option('--outer-momentum <m>', 'with --local-steps: its momentum', momentum, 0)
    .option('--out <dir>', 'where the trained model is written', 'gradpool-demo-model')
    .option('--only-online', 'stop after the workers are online (no training)', false)
    .option('--own-nats', 'start a private nats-server with per-worker NATS users even if one answers on 127.0.0.1:4222', false)
    .showHelpAfterError()
    .exitOverride();
  cmd.parse(argv, { from: 'user' });
  const o = cmd.opts();
  if (o.batch < o.workers) throw new InvalidArgumentError(`--batch ${o.batch} is smaller than --workers ${o.workers}`);
  if (o.localSteps > 1 && o.batch < o.workers * o.localSteps) throw new InvalidArgumentError(`--batch ${o.batch} is smaller than --workers × --local-steps (${o.workers * o.localSteps}): a local step would have no samples`);
  return {
    workers: o.workers,
    model: o.model,
    codec: o.codec,
    epochs: o.epochs,
    batch: o.batch,
    lr: o.lr,
    localSteps: o.localSteps,
    outer: { lr: o.outerLr, momentum: o.outerMomentum },
    outDir: o.out,
    onlyOnline: o.onlyOnline,
    ownNats: o.ownNats,
  };
}

async function main(): Promise<number> {
  let opts: DemoOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    if (code === 0) return 0; // --help
    if (!(err as { code?: string }).code?.startsWith('commander.')) console.error(`demo: ${(err as Error).message}`);
    return 2;
  }

  const stop = new AbortController();
  let interrupted = 0;
  const onSignal = () => {
    interrupted++;
    if (interrupted > 1) process.exit(130);
    console.log(`\n${bold('Stopping')}: draining workers and the coordinator (Ctrl-C again to exit now)…`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  console.log(bold('Gradpool demo') + dim(` — ${opts.workers} workers, model ${opts.model}, codec ${opts.codec}`));
  // A database per NATS: datasets' rows must describe the shards of the NATS the run uses (each
  // dataset's bucket lives there); the private one of --own-nats keeps its data in .gradpool/.
  const services = await ensureServices((line) => console.log(dim(`  ${line}`)), opts.ownNats ? 'gradpool_demo_own_nats' : 'gradpool_demo', { ownNats: opts.ownNats });
  const workers: WorkerProcess[] = [];
  let coordinator: CoordinatorProcess | undefined;
  try {
    console.log(`${bold('1.')} starting the coordinator`);
    coordinator = await CoordinatorProcess.start({
      env: { GRADPOOL_DB_POOL_MAX: String(services.databasePoolMax), ...services.coordinatorEnv },
      databaseUrl: services.databaseUrl,
      natsUrl: services.natsUrl,
      // Defaults (5 s × 3): a worker busy with a long step must not look dead.
      heartbeatIntervalMs: 5000,
      heartbeatMisses: 3,
      logLevel: 'warn',
      readyTimeoutMs: 60_000,
    });
    console.log(dim(`  REST ${coordinator.httpUrl} (OpenAPI at ${coordinator.httpUrl}/docs), gRPC ${coordinator.grpcAddress}`));
    const coord = coordinator;
    const api = new AdminApi(() => coord.httpUrl, coord.adminKey);

    console.log(`${bold('2.')} creating a community group and a join token`);
    const group = await api.post<{ id: string; name: string }>('/v1/groups', {
      name: `demo-${Date.now().toString(36)}`,
      description: 'created by npm run demo',
    });
    const token = await api.post<{ token: string }>(`/v1/groups/${group.id}/tokens`, { name: 'demo', maxUses: opts.workers * 4 });

    console.log(`${bold('3.')} starting ${opts.workers} worker processes (gradpool-worker join …)`);
    const stateRoot = mkdtempSync(join(tmpdir(), 'gradpool-demo-'));
    for (let i = 0; i < opts.workers; i++) {
      workers.push(
        WorkerProcess.start({
          coordinator: coordinator.grpcAddress,
          token: token.token,
          name: `demo-worker-${i + 1}`,
          stateDir: join(stateRoot, `w${i + 1}`),
          backend: 'auto',
          logLevel: 'warn',
        }),
      );
    }
    const online = await waitFor(
      async () => {
        const list = await api.get<WorkerRow[]>(`/v1/workers?group=${group.id}&status=online`);
        return list.length >= opts.workers ? list : undefined;
      },
      60_000,
      stop.signal,
      'the workers to come online',
    );
    console.log(
      table(
        ['worker', 'status', 'backend', 'GFLOP/s', 'device'],
        online.map((w) => [w.name, w.status, w.capabilities.backend, w.capabilities.gflops.toFixed(1), w.capabilities.deviceName]),
      ),
    );
    if (opts.onlyOnline) return 0;
    await runTraining(api, coordinator.httpUrl, group.id, { ...opts }, stop.signal);
    return 0;
  } catch (err) {
    if (stop.signal.aborted) return 130;
    console.error(`\ndemo: ${(err as Error).message}`);
    if (coordinator) console.error(dim(coordinator.output().split('\n').slice(-15).join('\n')));
    return 1;
  } finally {
    await Promise.allSettled(
      workers.map(async (w) => {
        w.interrupt('SIGINT');
        await w.exited(15_000).catch(() => w.kill());
      }),
    );
    await coordinator?.stop().catch(() => coordinator?.kill());
    await services.close();
  }
}

interface WorkerRow {
  id: string;
  name: string;
  status: string;
  capabilities: { backend: string; gflops: number; deviceName: string };
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`demo: ${(err as Error)?.stack ?? String(err)}`);
    process.exit(1);
  },
);
