import { ConfigError, formatProblem, loadConfigFile } from '../config/load.ts';

export async function validate(file: string): Promise<number> {
  try {
    const cfg = await loadConfigFile(file);
    const n = Object.keys(cfg.targets).length;
    process.stdout.write(`${file}: ok (${n} target${n === 1 ? '' : 's'}, ${Object.keys(cfg.stores).length} store(s))\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${file}: invalid\n${err.problems.map((p) => `  ${formatProblem(p)}\n`).join('')}`);
      return 1;
    }
    throw err;
  }
}
