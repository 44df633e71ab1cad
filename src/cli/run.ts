import { ConfigError, formatProblem, loadConfigFile } from '../config/load.ts';
import { KeylessError } from '../errors.ts';
import { createLogger } from '../observability/logger.ts';
import { Proxy } from '../proxy/proxy.ts';
import { watchConfig } from '../config/watch.ts';

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

  // Live reload: on SIGHUP or when the file changes. An invalid file keeps the running config.
  const reload = async (why: string): Promise<void> => {
    let next;
    try {
      next = await loadConfigFile(file);
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems.map(formatProblem) : [String(err)];
      proxy.metrics.configReloads.inc({ result: 'invalid' });
      log.error({ config: file, trigger: why, problems }, 'config reload rejected: keeping the running config');
      return;
    }
    try {
      await proxy.reload(next);
      proxy.metrics.configReloads.inc({ result: 'ok' });
    } catch (err) {
      proxy.metrics.configReloads.inc({ result: 'failed' });
      log.error({ config: file, trigger: why, err: (err as Error).message }, 'config reload failed: keeping the running config');
    }
  };
  const unwatch = watchConfig(file, () => void reload('file changed'), (err) => log.warn({ err: err.message }, 'cannot watch the config file; reload with SIGHUP'));
  process.on('SIGHUP', () => void reload('SIGHUP'));

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        resolve(signal === 'SIGINT' ? 130 : 143);
        return;
      }
      stopping = true;
      unwatch();
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
