import type { Command } from 'commander';
import type { CalibrationResult, ControlView, DecisionEntry } from '../../core/control-api.js';
import { formatSize } from '../../core/units.js';
import { apiRequest } from '../client.js';
import { printJson } from '../output.js';
import { common, stateDir, type CommonOpts } from './common.js';

const path = (name: string, rest = ''): string => `/v1/guests/${encodeURIComponent(name)}/control${rest}`;
const ms = (v: number | null): string => (v === null ? '-' : v >= 1000 ? `${(v / 1000).toFixed(2)}s` : `${Math.round(v)}ms`);

function printView(v: ControlView): void {
  const lines = [
    `${v.guest}: scheme ${v.scheme}, SLO ${ms(v.sloMs)} on ${v.task ?? 'all tasks'}, share ${formatSize(v.minBytes)} .. ${formatSize(v.maxBytes)}`,
    `interval ${ms(v.intervalMs)} (bounds ${ms(v.intervalMinMs)} .. ${ms(v.intervalMaxMs)}), next decision ${v.nextDecisionAt === null ? '-' : new Date(v.nextDecisionAt).toISOString()}`,
    `model E[X|m] = ${v.model.a.toFixed(3)} + ${v.model.b.toFixed(3)}/(m + ${v.model.c.toFixed(2)}) s (${v.modelSource}${v.calibrated ? '' : ': run hylics control calibrate'})`,
    `budget ${v.budgetBytes === null ? 'none' : formatSize(v.budgetBytes)}`,
  ];
  if (v.lastDecision) lines.push(`last: ${decisionLine(v.lastDecision)}`);
  process.stdout.write(lines.join('\n') + '\n');
}

function decisionLine(d: DecisionEntry): string {
  return `${new Date(d.t).toISOString()} ${d.action.padEnd(7)} ${formatSize(d.sizeBytes)} -> ${formatSize(d.appliedBytes)} (target ${formatSize(d.targetBytes)}) ` +
    `λ=${d.lambda.toFixed(3)}/s R=${ms(d.responseMeanMs)} p95=${ms(d.p95Ms)} tasks=${d.tasks} predicted=${ms(d.predictedMs)} next=${ms(d.intervalMs)}: ${d.reason}`;
}

export function register(program: Command): void {
  const control = program.command('control').description('the share-size controller of a guest (paper §5): settings, decisions, calibration');
  common(
    control
      .command('set <name>')
      .description('set the controller of a guest (checked whole; nothing changes on bad input)'),
  )
    .option('--scheme <s>', 'improved|aq|adaptive|queue|static|off', 'improved')
    .requiredOption('--slo <duration>', 'response-time SLO, e.g. 10s or 500ms')
    .option('--task <name>', 'the task whose response time is regulated (default: all tasks)')
    .option('--min <size>', 'smallest share (default 32M)')
    .option('--max <size>', "largest share (default: the guest's memory)")
    .option('--interval-min <duration>', 'shortest control interval (default 30s; at least 1s)')
    .option('--interval-max <duration>', 'longest control interval (default 4m)')
    .action(
      async (
        name: string,
        o: CommonOpts & {
          scheme: string;
          slo: string;
          task?: string;
          min?: string;
          max?: string;
          intervalMin?: string;
          intervalMax?: string;
        },
      ) => {
        const body: Record<string, string> = { scheme: o.scheme, slo: o.slo };
        for (const k of ['task', 'min', 'max', 'intervalMin', 'intervalMax'] as const)
          if (o[k] !== undefined) body[k] = o[k]!;
        const v = await apiRequest<ControlView>(stateDir(o), 'PUT', path(name), body);
        if (o.json) printJson(v);
        else printView(v);
      },
    );
  common(control.command('show <name>').description('show the controller of a guest')).action(async (name: string, o: CommonOpts) => {
    const v = await apiRequest<ControlView>(stateDir(o), 'GET', path(name));
    if (o.json) printJson(v); else printView(v);
  });
  common(control.command('log <name>').description('the controller\'s decisions with every input, oldest first'))
    .option('-n, --limit <n>', 'decisions', '100')
    .action(async (name: string, o: CommonOpts & { limit: string }) => {
      const r = await apiRequest<{ decisions: DecisionEntry[] }>(stateDir(o), 'GET', path(name, `/log?limit=${Number(o.limit)}`));
      if (o.json) printJson(r); else process.stdout.write(r.decisions.map(decisionLine).join('\n') + (r.decisions.length ? '\n' : ''));
    });
  common(
    control
      .command('calibrate <name> <argv...>')
      .description(
        'measure E[X|m] of a task at several share sizes (hylics control calibrate GUEST --task NAME -- CMD...)',
      ),
  )
    .requiredOption('--task <name>', 'the task this command is')
    .option('--sizes <list>', 'share sizes, comma-separated (default 16M,32M,64M,128M)')
    .option('--repeat <n>', 'runs per size', '3')
    .action(
      async (name: string, argvIn: string[], o: CommonOpts & { task: string; sizes?: string; repeat: string }) => {
        const argv = argvIn[0] === '--' ? argvIn.slice(1) : argvIn;
        const body = {
          task: o.task,
          argv,
          repeat: Number(o.repeat),
          ...(o.sizes ? { sizes: o.sizes.split(',').map((s) => s.trim()) } : {}),
        };
        const r = await apiRequest<CalibrationResult>(stateDir(o), 'POST', path(name, '/calibrate'), body);
        if (o.json) {
          printJson(r);
          return;
        }
        const lines = r.points.map(
          (p) =>
            `${formatSize(p.sizeBytes).padStart(10)}: ${p.meanS.toFixed(3)} s ± ${p.sdS.toFixed(3)} (min ${p.minS.toFixed(3)}, max ${p.maxS.toFixed(3)}, ${p.runs} runs)`,
        );
        for (const s of r.skipped) lines.push(`${formatSize(s.sizeBytes).padStart(10)}: skipped (${s.reason})`);
        lines.push(
          `E[X|m] = ${r.model.a.toFixed(3)} + ${r.model.b.toFixed(3)}/(m + ${r.model.c.toFixed(2)}) s, r² = ${r.r2.toFixed(3)}; stored for task ${r.task}`,
        );
        process.stdout.write(lines.join('\n') + '\n');
        for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      },
    );
}
