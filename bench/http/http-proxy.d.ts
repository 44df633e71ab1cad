// The little of http-proxy's API the forwarder comparison uses (no @types package needed for a bench).
declare module 'http-proxy' {
  import type { Agent, ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
  import type { Socket } from 'node:net';
  interface ProxyServer {
    web(req: IncomingMessage, res: ServerResponse): void;
    on(event: 'proxyReq', fn: (proxyReq: ClientRequest) => void): this;
    on(event: 'error', fn: (err: Error, req: IncomingMessage, res: ServerResponse | Socket) => void): this;
  }
  const httpProxy: { createProxyServer(opts: { target: string; agent?: Agent; changeOrigin?: boolean; secure?: boolean; ca?: string }): ProxyServer };
  export default httpProxy;
}
