// Prometheus metrics of hylicsd (prom-client: the standard Node client, with default process metrics).
// Gauges that describe current state are filled at scrape time from the daemon, so they never go stale.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsSource {
  guestsSnapshot(): Promise<
    Array<{ name: string; running: boolean; connected: boolean; sizeBytes: number; usedBytes: number }>
  >;
}

export class DaemonMetrics {
  readonly registry: Registry;
  readonly taskResponse: Histogram<'guest' | 'task'>;
  readonly tasks: Counter<'guest' | 'task' | 'result'>;
  readonly apiRequests: Counter<'route' | 'method' | 'status'>;

  constructor(source: MetricsSource, registry: Registry = new Registry()) {
    this.registry = registry;
    collectDefaultMetrics({ register: this.registry, prefix: 'hylicsd_' });
    const reg = [this.registry];
    this.taskResponse = new Histogram({
      name: 'hylics_task_response_seconds', help: 'Response time of tasks reported by guests through track()',
      labelNames: ['guest', 'task'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 10, 15, 30, 60], registers: reg,
    });
    this.tasks = new Counter({ name: 'hylics_tasks_total', help: 'Tasks reported by guests', labelNames: ['guest', 'task', 'result'], registers: reg });
    this.apiRequests = new Counter({ name: 'hylics_api_requests_total', help: 'HTTP API requests', labelNames: ['route', 'method', 'status'], registers: reg });
    const guestGauge = (name: string, help: string, pick: (g: Awaited<ReturnType<MetricsSource['guestsSnapshot']>>[number]) => number): void => {
      new Gauge({
        name, help, labelNames: ['guest'], registers: reg,
        async collect() {
          this.reset();
          for (const g of await source.guestsSnapshot()) this.set({ guest: g.name }, pick(g));
        },
      });
    };
    guestGauge('hylics_share_size_bytes', 'Size limit of the guest share (tmpfs)', (g) => g.sizeBytes);
    guestGauge('hylics_share_used_bytes', 'Bytes used in the guest share', (g) => g.usedBytes);
    guestGauge('hylics_guest_running', '1 when the guest is running', (g) => (g.running ? 1 : 0));
    guestGauge('hylics_agent_connected', '1 when the guest agent is connected on the control channel', (g) => (g.connected ? 1 : 0));
  }

  /** Drop a removed guest's series (prom-client removes only exact label sets). */
  forgetGuest(guest: string, tasks: string[]): void {
    for (const task of tasks) {
      this.taskResponse.remove({ guest, task });
      for (const result of ['ok', 'error']) this.tasks.remove({ guest, task, result });
    }
  }
}
