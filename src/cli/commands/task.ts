// `hylics task run NAME [--tier-hit|--tier-miss] -- CMD [ARGS...]` (inside a guest): run CMD as a task reported
// to the host profiler through the agent (src/guest/task-run.ts). Exit code, signal and stdio are CMD's.
import type { Command } from 'commander';
import { HylicsError } from '../../core/errors/index.js';
import { exitLike, runTask } from '../../guest/task-run.js';

export function register(program: Command): void {
  const task = program.command('task').description('tasks in a guest, reported to the host profiler (response times for the share controller)');
  task.command('run <name> <argv...>')
    .description('run CMD as task NAME: stdin, stdout, stderr, exit code and signal are CMD\'s; start and end go to the host through the agent (an absent agent never stops CMD)')
    .option('--tier-hit', 'the task\'s input came from the memory tier (the share)')
    .option('--tier-miss', 'the task\'s input came from the disk tier')
    .option('--socket <path>', 'agent socket (default $HYLICS_AGENT_SOCKET or /run/hylics/agent.sock)')
    .action(async (name: string, argvIn: string[], o: { tierHit?: boolean; tierMiss?: boolean; socket?: string }) => {
      if (o.tierHit && o.tierMiss) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'give --tier-hit or --tier-miss, not both');
      const argv = argvIn[0] === '--' ? argvIn.slice(1) : argvIn;
      const tier = o.tierHit ? 'memory' : o.tierMiss ? 'disk' : undefined;
      const r = await runTask(name, argv, { ...(tier ? { tier } : {}), ...(o.socket ? { socket: o.socket } : {}) });
      exitLike(r);
    });
}
