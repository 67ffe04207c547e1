#!/usr/bin/env node
// `npm run lint:deploy`: checks deploy/ without Docker or a cluster. Parses compose.yaml and
// k8s/*.yaml, and checks their references: services, volumes, Dockerfiles and what they copy,
// images, secrets, config maps, Service selectors, and that every environment variable set for
// the coordinator is one it reads (apps/coordinator/src/config.ts ENV_VARS, read by main.ts) and
// every one set for a worker is one the worker reads. Validates nats/cluster.conf with
// nats-server when one is installed.
/* eslint-disable no-console -- a CLI: its output is the report */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const DEPLOY = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(DEPLOY, '..');
const errors = [];
const notes = [];
const fail = (where, msg) => errors.push(`${where}: ${msg}`);
const rel = (p) => relative(ROOT, p);

function readYaml(file) {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const out = [];
  for (const d of docs) {
    for (const e of d.errors) fail(rel(file), `YAML: ${e.message}`);
    const v = d.toJS();
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

function walk(dir, ext, acc = []) {
  if (!existsSync(dir)) return acc;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, ext, acc);
    else if (p.endsWith(ext) && !p.endsWith(`.test${ext}`)) acc.push(p);
  }
  return acc;
}

// ---- what the apps read -----------------------------------------------------------------
const configTs = readFileSync(join(ROOT, 'apps/coordinator/src/config.ts'), 'utf8');
const envBlock = /export const ENV_VARS = \[([\s\S]*?)\]/.exec(configTs);
if (!envBlock) fail('apps/coordinator/src/config.ts', 'ENV_VARS list not found');
const COORDINATOR_ENV = new Set([...(envBlock?.[1] ?? '').matchAll(/'([A-Z0-9_]+)'/g)].map((m) => m[1]));
const mainTs = readFileSync(join(ROOT, 'apps/coordinator/src/main.ts'), 'utf8');
if (!/ENV_VARS/.test(mainTs)) fail('apps/coordinator/src/main.ts', 'does not read ENV_VARS');
const WORKER_ENV = new Set(
  walk(join(ROOT, 'apps/worker/src'), '.ts').flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/\b(GRADPOOL_[A-Z0-9_]+)\b/g)].map((m) => m[1])),
);

/** Which app an image runs, and the Dockerfile that builds it. */
const IMAGES = {
  'gradpool/coordinator': { app: 'coordinator', dockerfile: 'Dockerfile.coordinator' },
  'gradpool/worker': { app: 'worker', dockerfile: 'Dockerfile.worker' },
  'gradpool/worker-cuda': { app: 'worker', dockerfile: 'Dockerfile.worker-cuda' },
};
const imageName = (image) => String(image).replace(/:[^/:]+$/, '');

function checkEnv(where, image, names) {
  const info = IMAGES[imageName(image)];
  if (!info) return;
  const known = info.app === 'coordinator' ? COORDINATOR_ENV : WORKER_ENV;
  for (const n of names) {
    if (!known.has(n)) fail(where, `sets ${n}, which the ${info.app} does not read`);
  }
}

// ---- Dockerfiles ------------------------------------------------------------------------
function checkDockerfile(file) {
  const where = rel(file);
  if (!existsSync(file)) return fail(where, 'missing');
  const lines = readFileSync(file, 'utf8').replace(/\\\n/g, ' ').split('\n');
  const stages = new Set();
  let sawFrom = false;
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [instr, ...rest] = line.split(/\s+/);
    const upper = instr.toUpperCase();
    if (upper === 'FROM') {
      sawFrom = true;
      const as = rest.findIndex((x) => x.toUpperCase() === 'AS');
      if (as >= 0) stages.add(rest[as + 1]);
    } else if (upper === 'COPY') {
      const from = rest.find((x) => x.startsWith('--from='));
      const args = rest.filter((x) => !x.startsWith('--'));
      if (from) {
        if (!stages.has(from.slice(7))) fail(where, `COPY ${from}: no earlier stage of that name`);
        continue;
      }
      for (const src of args.slice(0, -1)) {
        if (!existsSync(join(ROOT, src))) fail(where, `COPY ${src}: not in the repository`);
      }
    } else if (upper === 'CMD' || upper === 'ENTRYPOINT') {
      const js = /"([^"]+\/dist\/[^"]+\.js)"/.exec(line);
      if (js) {
        const src = js[1].replace('/dist/', '/src/').replace(/\.js$/, '.ts');
        if (!existsSync(join(ROOT, src))) fail(where, `${upper} runs ${js[1]}, but ${src} does not exist`);
      }
    }
  }
  if (!sawFrom) fail(where, 'no FROM');
}
for (const { dockerfile } of Object.values(IMAGES)) checkDockerfile(join(DEPLOY, dockerfile));

// ---- compose ----------------------------------------------------------------------------
const composeFile = join(DEPLOY, 'compose.yaml');
const [compose] = readYaml(composeFile);
if (!compose?.services) fail('deploy/compose.yaml', 'no services');
const services = compose?.services ?? {};
const volumes = new Set(Object.keys(compose?.volumes ?? {}));
for (const need of ['postgres', 'nats', 'coordinator', 'worker']) if (!services[need]) fail('deploy/compose.yaml', `no ${need} service`);
for (const [name, svc] of Object.entries(services)) {
  const where = `deploy/compose.yaml services.${name}`;
  if (!svc.image && !svc.build) fail(where, 'neither image nor build');
  if (svc.build) {
    const ctx = resolve(DEPLOY, svc.build.context ?? '.');
    const df = join(ctx, svc.build.dockerfile ?? 'Dockerfile');
    if (!existsSync(df)) fail(where, `build.dockerfile ${rel(df)} does not exist`);
    const info = IMAGES[imageName(svc.image ?? '')];
    if (!info) fail(where, `image ${svc.image} is not one of ${Object.keys(IMAGES).join(', ')}`);
    else if (rel(df) !== `deploy/${info.dockerfile}`) fail(where, `image ${svc.image} should be built from deploy/${info.dockerfile}`);
  }
  const deps = Array.isArray(svc.depends_on) ? svc.depends_on : Object.keys(svc.depends_on ?? {});
  for (const d of deps) if (!services[d]) fail(where, `depends_on ${d}: no such service`);
  for (const v of svc.volumes ?? []) {
    const src = String(typeof v === 'string' ? v.split(':')[0] : v.source);
    if (src.startsWith('.') || src.startsWith('/')) {
      if (!existsSync(resolve(DEPLOY, src))) fail(where, `volume source ${src} does not exist`);
    } else if (!volumes.has(src)) fail(where, `volume ${src} is not declared under volumes:`);
  }
  const env = Array.isArray(svc.environment) ? svc.environment.map((e) => String(e).split('=')[0]) : Object.keys(svc.environment ?? {});
  if (svc.image) checkEnv(where, svc.image, env);
}
// JetStream: enabled by -js, or by the config file it runs with (its jetstream block is checked below).
if (services.nats && !/-js|single\.conf/.test(JSON.stringify(services.nats.command ?? ''))) fail('deploy/compose.yaml services.nats', 'JetStream (-js) not enabled');
const coordEnv = services.coordinator?.environment ?? {};
for (const [k, host] of [['DATABASE_URL', 'postgres'], ['NATS_URL', 'nats']]) {
  if (!String(coordEnv[k] ?? '').includes(`@${host}:`) && !String(coordEnv[k] ?? '').includes(`//${host}:`)) {
    fail('deploy/compose.yaml services.coordinator', `${k} does not point at the ${host} service`);
  }
}
const workerCoord = String(services.worker?.environment?.GRADPOOL_COORDINATOR ?? '');
if (workerCoord && !workerCoord.startsWith('coordinator:')) fail('deploy/compose.yaml services.worker', 'GRADPOOL_COORDINATOR does not point at the coordinator service');

// ---- Kubernetes -------------------------------------------------------------------------
const k8sFiles = readdirSync(join(DEPLOY, 'k8s')).filter((f) => /\.ya?ml$/.test(f)).map((f) => join(DEPLOY, 'k8s', f));
const docs = k8sFiles.flatMap((f) => readYaml(f).map((doc) => ({ doc, file: rel(f) })));
const byKind = (kind) => docs.filter((d) => d.doc.kind === kind);
const WORKLOADS = ['Deployment', 'StatefulSet', 'DaemonSet'];
const namespaces = new Set(byKind('Namespace').map((d) => d.doc.metadata?.name));
for (const { doc, file } of docs) {
  const where = `${file} ${doc.kind}/${doc.metadata?.name}`;
  if (!doc.apiVersion || !doc.kind || !doc.metadata?.name) {
    fail(file, 'a document without apiVersion, kind or metadata.name');
    continue;
  }
  if (doc.kind !== 'Namespace' && !namespaces.has(doc.metadata.namespace)) fail(where, `namespace ${doc.metadata.namespace} is not defined`);
  if (WORKLOADS.includes(doc.kind)) {
    const labels = doc.spec?.template?.metadata?.labels ?? {};
    for (const [k, v] of Object.entries(doc.spec?.selector?.matchLabels ?? {})) {
      if (labels[k] !== v) fail(where, `selector ${k}=${v} does not match the pod template labels`);
    }
    if (doc.kind === 'StatefulSet' && doc.spec.serviceName && !byKind('Service').some((s) => s.doc.metadata.name === doc.spec.serviceName)) {
      fail(where, `serviceName ${doc.spec.serviceName}: no such Service`);
    }
    const pod = doc.spec?.template?.spec ?? {};
    const podVolumes = new Set([...(pod.volumes ?? []).map((v) => v.name), ...(doc.spec.volumeClaimTemplates ?? []).map((v) => v.metadata.name)]);
    for (const v of pod.volumes ?? []) {
      if (v.configMap && !byKind('ConfigMap').some((c) => c.doc.metadata.name === v.configMap.name)) fail(where, `ConfigMap ${v.configMap.name} is not defined`);
      if (v.secret && !byKind('Secret').some((c) => c.doc.metadata.name === v.secret.secretName)) fail(where, `Secret ${v.secret.secretName} is not defined`);
    }
    for (const c of pod.containers ?? []) {
      if (!c.image) fail(where, `container ${c.name} has no image`);
      const info = IMAGES[imageName(c.image ?? '')];
      if (String(c.image).startsWith('gradpool/') && !info) fail(where, `image ${c.image} has no Dockerfile in deploy/`);
      checkEnv(`${where} container ${c.name}`, c.image, (c.env ?? []).map((e) => e.name));
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) continue;
        const secret = byKind('Secret').find((s) => s.doc.metadata.name === ref.name);
        if (!secret) fail(where, `env ${e.name}: Secret ${ref.name} is not defined`);
        else if (!(ref.key in { ...secret.doc.stringData, ...secret.doc.data })) fail(where, `env ${e.name}: Secret ${ref.name} has no key ${ref.key}`);
      }
      for (const m of c.volumeMounts ?? []) if (!podVolumes.has(m.name)) fail(where, `volumeMount ${m.name}: no such volume`);
    }
  }
  if (doc.kind === 'Service') {
    const sel = doc.spec?.selector ?? {};
    const match = docs.some(
      (d) => WORKLOADS.includes(d.doc.kind) && Object.entries(sel).every(([k, v]) => d.doc.spec?.template?.metadata?.labels?.[k] === v),
    );
    if (!match) fail(where, `selector ${JSON.stringify(sel)} matches no workload`);
  }
}
for (const need of ['coordinator', 'nats', 'worker']) {
  if (!docs.some((d) => WORKLOADS.includes(d.doc.kind) && d.doc.metadata.name === need)) fail('deploy/k8s', `no ${need} workload`);
}

// ---- NATS cluster config ----------------------------------------------------------------
const clusterConfFile = join(DEPLOY, 'nats/cluster.conf');
if (!existsSync(clusterConfFile)) fail('deploy/nats/cluster.conf', 'missing');
else {
  const conf = readFileSync(clusterConfFile, 'utf8');
  if (!/^\s*jetstream\s*\{/m.test(conf)) fail('deploy/nats/cluster.conf', 'no jetstream block');
  const routes = [...conf.matchAll(/nats-route:\/\/[^\s]+/g)];
  if (routes.length !== 3) fail('deploy/nats/cluster.conf', `expected 3 cluster routes, found ${routes.length}`);
  const cm = byKind('ConfigMap').find((c) => c.doc.data?.['cluster.conf'] !== undefined);
  if (!cm) fail('deploy/k8s', 'no ConfigMap carries cluster.conf');
  else if (cm.doc.data['cluster.conf'].trim() !== conf.trim()) fail(`${cm.file} ConfigMap/${cm.doc.metadata.name}`, 'cluster.conf differs from deploy/nats/cluster.conf');
  const sts = byKind('StatefulSet').find((s) => s.doc.metadata.name === 'nats');
  if (sts && sts.doc.spec.replicas !== 3) fail(`${sts.file} StatefulSet/nats`, 'expected 3 replicas');
  const bin = ['', ...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/bin']
    .map((d) => join(d, 'nats-server'))
    .find((p) => p !== 'nats-server' && existsSync(p));
  if (bin) {
    const r = spawnSync(bin, ['-c', clusterConfFile, '-t'], { env: { ...process.env, SERVER_NAME: 'nats-0' }, encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) fail('deploy/nats/cluster.conf', `nats-server -t: ${(r.stderr || r.stdout).trim()}`);
    else notes.push(`nats/cluster.conf validated by ${bin}`);
  } else notes.push('nats-server not installed: cluster.conf not validated by the server');
}

// ---- NATS single-server config (compose) --------------------------------------------------
const singleConfFile = join(DEPLOY, 'nats/single.conf');
if (!existsSync(singleConfFile)) fail('deploy/nats/single.conf', 'missing');
else {
  const conf = readFileSync(singleConfFile, 'utf8');
  if (!/^\s*jetstream\s*\{/m.test(conf)) fail('deploy/nats/single.conf', 'no jetstream block');
  const nats = services.nats;
  if (!nats?.command?.includes('/etc/nats/single.conf')) fail('deploy/compose.yaml services.nats', 'does not run with /etc/nats/single.conf');
  if (!(nats?.volumes ?? []).some((v) => String(v).startsWith('./nats/single.conf:/etc/nats/single.conf'))) fail('deploy/compose.yaml services.nats', 'does not mount ./nats/single.conf');
  const bin = ['', ...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/bin']
    .map((d) => join(d, 'nats-server'))
    .find((p) => p !== 'nats-server' && existsSync(p));
  if (bin) {
    const r = spawnSync(bin, ['-c', singleConfFile, '-t'], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) fail('deploy/nats/single.conf', `nats-server -t: ${(r.stderr || r.stdout).trim()}`);
    else notes.push(`nats/single.conf validated by ${bin}`);
  }
}

// ---- report -----------------------------------------------------------------------------
const checked = `compose.yaml (${Object.keys(services).length} services), ${k8sFiles.length} k8s files (${docs.length} documents), ${Object.keys(IMAGES).length} Dockerfiles, nats/cluster.conf, nats/single.conf`;
for (const n of notes) console.log(`note: ${n}`);
if (errors.length) {
  console.error(`deploy check FAILED (${checked}):`);
  for (const e of errors) console.error(`  - ${e}`);
  process.exit(1);
}
console.log(`deploy check ok: ${checked}`);
