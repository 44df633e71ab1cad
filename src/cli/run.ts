import { ConfigError, formatProblem, loadConfigFile } from '../config/load.ts';
import { KeylessError } from '../errors.ts';
import { createLogger } from '../observability/logger.ts';
import { Proxy } from '../proxy/proxy.ts';

export async function run(file: string): Promise<number> {
  let cfg;
  try {
    cfg = await loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`keyless: ${file} is invalid:\n${err.problems.map((p) => `  ${formatProblem(p)}\n`).join('')}`);
      return 1;
    }
    throw err;
  }
  const log = createLogger({ level: cfg.log.level });
  let proxy: Proxy;
  try {
    proxy = new Proxy(cfg, log);
    await proxy.start();
  } catch (err) {
    const msg = err instanceof KeylessError ? err.message : `${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`.trim();
    log.fatal({ err: msg }, 'cannot start');
    log.flush();
    process.stderr.write(`keyless: cannot start: ${msg}\n`);
    return 1;
  }
  log.info({ config: file, targets: Object.keys(cfg.targets) }, 'keyless started');

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        resolve(signal === 'SIGINT' ? 130 : 143);
        return;
      }
      stopping = true;
      log.info({ signal }, 'shutting down');
      proxy.close().then(
        () => {
          log.flush();
          resolve(0);
        },
        (err: unknown) => {
          log.error({ err }, 'error during shutdown');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
