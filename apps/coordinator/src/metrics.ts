/**
 * Prometheus metrics of one coordinator (its own registry, so that several coordinators can
 * run in one process in tests). Labels stay low-cardinality: no worker or job ids.
 */
import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

@Injectable()
export class CoordinatorMetrics {
  readonly registry = new Registry();

  readonly registrations = new Counter({
    name: 'gradpool_worker_registrations_total',
    help: 'Register calls by result (registered, reidentified, unauthenticated, invalid, error).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly heartbeats = new Counter({
    name: 'gradpool_worker_heartbeats_total',
    help: 'Heartbeats received from workers.',
    registers: [this.registry],
  });
  readonly sessions = new Gauge({
    name: 'gradpool_worker_sessions',
    help: 'Worker session streams open on this coordinator.',
    registers: [this.registry],
  });
  readonly workerTransitions = new Counter({
    name: 'gradpool_worker_transitions_total',
    help: 'Worker status changes by new status.',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly workers = new Gauge({
    name: 'gradpool_workers',
    help: 'Registered workers by status (refreshed at each scrape).',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'gradpool_http_request_duration_seconds',
    help: 'Admin API request duration by route pattern, method and status class.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
