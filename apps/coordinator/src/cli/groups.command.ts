/** `gradpool groups …` and `gradpool tokens …`: community groups and their join tokens through the REST API. */
import { Command, InvalidArgumentError as CommanderArgError } from 'commander';
import ms from 'ms';
import type { ApiClient } from './api-client.js';
import type { CliIo } from './run.js';
import { num, table } from './table.js';

interface Group {
  id: string;
  name: string;
  description: string;
  allowPublicJobs: boolean;
  createdAt: string;
}

interface JoinToken {
  id: string;
  name: string;
  prefix?: string;
  uses?: number;
  maxUses?: number | null;
  expiresAt?: string | null;
  revokedAt?: string | null;
  createdAt: string;
  usable?: boolean;
  token?: string;
}

const positiveInt = (flag: string) => (v: string) => {
  const x = Number(v);
  if (!Number.isInteger(x) || x <= 0) throw new CommanderArgError(`${flag} must be a positive integer`);
  return x;
};

/** `7d`, `12h`, `30m`, `90s` or plain seconds → whole seconds. */
const duration = (v: string) => {
  const millis = /^\d+$/.test(v) ? Number(v) * 1000 : ms(v as ms.StringValue);
  if (typeof millis !== 'number' || !Number.isFinite(millis) || millis < 1000) throw new CommanderArgError('--expires-in must be a duration such as 7d, 12h, 30m or a number of seconds');
  return Math.round(millis / 1000);
};

export function groupsCommand(io: CliIo, client: () => ApiClient): Command {
  const cmd = new Command('groups').description('list, create and show community groups');

  cmd
    .command('list')
    .description('list the groups this key may see')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const all = await client().request<Group[]>('GET', '/v1/groups');
      if (o.json) return io.out(JSON.stringify(all, null, 2));
      if (all.length === 0) return io.out('no groups');
      for (const l of table(['id', 'name', 'public jobs', 'created', 'description'], all.map((g) => [g.id, g.name, g.allowPublicJobs ? 'yes' : 'no', g.createdAt.slice(0, 16).replace('T', ' '), g.description]))) io.out(l);
    });

  cmd
    .command('create')
    .description('create a group (admin keys only)')
    .argument('<name>', 'group name')
    .option('--description <text>', 'what the group is')
    .option('--no-public-jobs', 'its workers run only the group’s own jobs')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const g = await client().request<Group>('POST', '/v1/groups', { name, description: o.description, allowPublicJobs: o.publicJobs });
      if (o.json) return io.out(JSON.stringify(g, null, 2));
      io.out(`created group ${g.name} (${g.id})`);
      io.out(`next: gradpool tokens create ${g.name} --max-uses 20 --expires-in 7d`);
    });

  cmd
    .command('show')
    .description('show a group (id or name)')
    .argument('<group>', 'id or name')
    .option('--json', 'print JSON')
    .action(async (ref: string, o) => {
      const api = client();
      const g = await api.request<Group>('GET', `/v1/groups/${await api.resolve('/v1/groups', 'group', ref)}`);
      if (o.json) return io.out(JSON.stringify(g, null, 2));
      io.out(`${g.name}  (${g.id})`);
      io.out(`  description  ${g.description || '—'}`);
      io.out(`  public jobs  ${g.allowPublicJobs ? 'yes: its workers also run jobs open to every group' : 'no: its own jobs only'}`);
      io.out(`  created      ${g.createdAt}`);
    });

  return cmd;
}

export function tokensCommand(io: CliIo, client: () => ApiClient): Command {
  const cmd = new Command('tokens').description('join tokens of a group: what volunteers pass to gradpool-worker join');
  const groupId = (api: ApiClient, ref: string) => api.resolve('/v1/groups', 'group', ref);

  cmd
    .command('create')
    .description('create a join token; it is printed once (stored hashed)')
    .argument('<group>', 'group id or name')
    .option('--name <name>', 'what the token is for')
    .option('--max-uses <n>', 'workers that may register with it (default unlimited)', positiveInt('--max-uses'))
    .option('--expires-in <duration>', 'lifetime: 7d, 12h, 30m or seconds (default never)', duration)
    .option('--json', 'print JSON')
    .action(async (ref: string, o) => {
      const api = client();
      const t = await api.request<JoinToken>('POST', `/v1/groups/${await groupId(api, ref)}/tokens`, { name: o.name, maxUses: o.maxUses, expiresInSeconds: o.expiresIn });
      if (o.json) return io.out(JSON.stringify(t, null, 2));
      io.out(t.token ?? '');
      io.err(`token ${t.id}${t.maxUses ? `, ${t.maxUses} uses` : ''}${t.expiresAt ? `, expires ${t.expiresAt}` : ''}; shown only now. Volunteers run:`);
      io.err(`  gradpool-worker join --coordinator <host:port> --token ${t.token}`);
    });

  cmd
    .command('list')
    .description("list a group's tokens (never their secret)")
    .argument('<group>', 'group id or name')
    .option('--json', 'print JSON')
    .action(async (ref: string, o) => {
      const api = client();
      const all = await api.request<JoinToken[]>('GET', `/v1/groups/${await groupId(api, ref)}/tokens`);
      if (o.json) return io.out(JSON.stringify(all, null, 2));
      if (all.length === 0) return io.out('no tokens');
      const state = (t: JoinToken) => (t.revokedAt ? 'revoked' : t.expiresAt && Date.parse(t.expiresAt) <= Date.now() ? 'expired' : t.usable === false ? 'used up' : 'usable');
      for (const l of table(
        ['id', 'name', 'starts with', 'state', 'uses', 'max uses', 'expires'],
        all.map((t) => [t.id, t.name || '—', t.prefix ? `${t.prefix}…` : '—', state(t), num(t.uses ?? 0), t.maxUses ? num(t.maxUses) : '—', t.expiresAt ? t.expiresAt.slice(0, 16).replace('T', ' ') : 'never']),
      ))
        io.out(l);
    });

  cmd
    .command('revoke')
    .description('revoke a token: no new worker registers with it (registered ones stay)')
    .argument('<group>', 'group id or name')
    .argument('<token-id>', 'the token id (tokens list)')
    .action(async (ref: string, tokenId: string) => {
      const api = client();
      await api.request('DELETE', `/v1/groups/${await groupId(api, ref)}/tokens/${encodeURIComponent(tokenId)}`);
      io.out(`revoked token ${tokenId}`);
    });

  return cmd;
}
