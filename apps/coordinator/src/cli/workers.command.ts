/** `gradpool workers …`: the volunteers' machines, through the REST API. */
import { Command, Option } from 'commander';
import type { ApiClient } from './api-client.js';
import type { CliIo } from './run.js';
import { num, table } from './table.js';

interface Worker {
  id: string;
  groupId: string;
  name: string;
  status: string;
  state: string;
  statusText: string;
  capabilities: { backend?: string; gflops?: number; deviceName?: string; memoryBytes?: number; os?: string; agentVersion?: string };
  currentJobId: string | null;
  reputation: number;
  registeredAt: string;
  lastSeenAt: string | null;
  connected: boolean;
  /** `workers show` only (GET /v1/workers/:id). */
  keptOutOf?: { jobId: string; jobName: string; kind: string; reason: string; until: string | null }[];
}

export function workersCommand(io: CliIo, client: () => ApiClient): Command {
  const cmd = new Command('workers').description('list, show and drain workers');

  cmd
    .command('list')
    .description('list workers (a group admin sees its group’s)')
    .option('--group <group>', 'only this group’s (id or name)')
    .addOption(new Option('--status <status>', 'only workers in this status').choices(['online', 'offline', 'draining', 'drained']))
    .option('--json', 'print JSON')
    .action(async (o) => {
      const api = client();
      const q = new URLSearchParams();
      if (o.group) q.set('group', await api.resolve('/v1/groups', 'group', o.group));
      if (o.status) q.set('status', o.status);
      const all = await api.request<Worker[]>('GET', `/v1/workers${q.size ? `?${q}` : ''}`);
      if (o.json) return io.out(JSON.stringify(all, null, 2));
      if (all.length === 0) return io.out('no workers');
      for (const l of table(
        ['id', 'name', 'status', 'state', 'backend', 'GFLOP/s', 'device', 'job', 'last seen'],
        all.map((w) => [
          w.id,
          w.name,
          w.status,
          w.state,
          w.capabilities.backend ?? '—',
          num(w.capabilities.gflops, 1),
          w.capabilities.deviceName ?? '—',
          w.currentJobId ? `${w.currentJobId.slice(0, 8)}…` : '—',
          w.lastSeenAt ? w.lastSeenAt.slice(0, 19).replace('T', ' ') : '—',
        ]),
      ))
        io.out(l);
    });

  cmd
    .command('show')
    .description('show a worker (id or name)')
    .argument('<worker>', 'id or name')
    .option('--json', 'print JSON')
    .action(async (ref: string, o) => {
      const api = client();
      const w = await api.request<Worker>('GET', `/v1/workers/${await api.resolve('/v1/workers', 'worker', ref)}`);
      if (o.json) return io.out(JSON.stringify(w, null, 2));
      const c = w.capabilities;
      io.out(`${w.name}  (${w.id})`);
      io.out(`  status      ${w.status}${w.connected ? ', connected' : ''}; ${w.state}${w.statusText ? `: ${w.statusText}` : ''}`);
      io.out(`  group       ${w.groupId}`);
      io.out(`  job         ${w.currentJobId ?? '—'}`);
      io.out(`  compute     ${c.backend ?? '?'} backend, ${num(c.gflops, 1)} GFLOP/s on ${c.deviceName ?? '?'}, ${c.memoryBytes ? `${(c.memoryBytes / 2 ** 30).toFixed(1)} GiB` : '? GiB'}`);
      io.out(`  agent       ${c.agentVersion ?? '?'} on ${c.os ?? '?'}`);
      io.out(`  reputation  ${w.reputation}`);
      io.out(`  registered  ${w.registeredAt}; last seen ${w.lastSeenAt ?? 'never'}`);
      if (w.keptOutOf?.length) {
        io.out(`  kept out of (gradpool jobs readmit <job> ${w.name} lets it back in):`);
        for (const l of table(
          ['job', 'after', 'until', 'reason'],
          w.keptOutOf.map((e) => [e.jobName, e.kind, e.until ? e.until.slice(0, 19).replace('T', ' ') : 'for good', e.reason]),
        ))
          io.out(`    ${l}`);
      }
    });

  cmd
    .command('drain')
    .description('ask a worker to finish its round, leave its job and disconnect')
    .argument('<worker>', 'id or name')
    .action(async (ref: string) => {
      const api = client();
      const id = await api.resolve('/v1/workers', 'worker', ref);
      await api.request('POST', `/v1/workers/${id}/drain`);
      io.out(`asked ${ref} to drain`);
    });

  return cmd;
}
