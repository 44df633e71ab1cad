import { parseArgs } from 'node:util';
import { run } from './run.ts';
import { validate } from './validate.ts';
import { check } from './check.ts';

const USAGE = `usage: keyless <command> [options]

commands:
  run --config FILE       start the proxy (also: keyless run FILE)
  validate FILE           check a config file; exits non-zero with the field paths of any errors
  check FILE              reach every store and upstream with the real credentials; a table of
                          what works and why not; exits non-zero on any failure

environment:
  KEYLESS_CONFIG          config file when --config is not given
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values, positionals } = (() => {
    try {
      return parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
    } catch (err) {
      process.stderr.write(`keyless: ${(err as Error).message}\n\n${USAGE}`);
      return { values: { help: true, config: undefined }, positionals: [] as string[] };
    }
  })();
  if (values.help || command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  const file = values.config ?? positionals[0] ?? process.env.KEYLESS_CONFIG;
  switch (command) {
    case 'run':
      if (!file) return usage('run needs --config FILE');
      return run(file);
    case 'validate':
      if (!file) return usage('validate needs a FILE');
      return validate(file);
    case 'check':
      if (!file) return usage('check needs a FILE');
      return check(file);
    default:
      return usage(`unknown command "${command}"`);
  }
}

function usage(msg: string): number {
  process.stderr.write(`keyless: ${msg}\n\n${USAGE}`);
  return 2;
}
