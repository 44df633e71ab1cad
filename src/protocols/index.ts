import type { TargetConfig } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { HttpHandler } from './http/handler.ts';
import { MysqlHandler } from './mysql/handler.ts';
import { PostgresHandler } from './postgres/handler.ts';
import type { ProtocolHandler } from './types.ts';

export function createHandler(protocol: TargetConfig['protocol'], log: Logger): ProtocolHandler {
  switch (protocol) {
    case 'postgres':
      return new PostgresHandler(log);
    case 'mysql':
      return new MysqlHandler(log);
    case 'http':
      return new HttpHandler(log);
  }
}
