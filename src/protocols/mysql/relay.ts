// After the login: bytes both ways, each a lean data → write loop with backpressure (as
// proxy/splice.ts). Upstream to client passes as is. Client to upstream goes through the
// header-only CommandScanner, which stops at a COM_CHANGE_USER so the handler can
// answer it with the stored credential; everything else passes as it arrived, with backpressure.
// Teardown is proxy/splice.ts's relayLifecycle: either side closing ends the other after a short
// linger, errors close both; an idle timeout (on the client socket) and shutdown tell the client why.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { relayLifecycle, type SpliceOptions } from '../../proxy/splice.ts';
import { CommandScanner } from './commands.ts';
import { Com } from './constants.ts';

export interface RelayOptions extends SpliceOptions {
  /**
   * Answer a COM_CHANGE_USER. Gets the bytes from the command's first packet on; the relay has
   * stopped both directions. Resolves with client bytes read past the command, to relay next.
   * Rejects when the connection cannot go on.
   */
  onChangeUser(initial: Buffer): Promise<Buffer>;
}

export function relay(client: Socket | TLSSocket, upstream: Socket | TLSSocket, fromClient: Buffer, opts: RelayOptions): Promise<void> {
  return new Promise((resolve) => {
    const scanner = new CommandScanner((c) => c === Com.CHANGE_USER);
    let intercepting = false;
    /** False once Keyless ends the connection itself: nothing more is relayed. */
    let relaying = true;
    const { done, destroyBoth } = relayLifecycle(client, upstream, opts, () => {
      relaying = false;
    });
    done.then(resolve);

    // Upstream → client.
    const onUpstreamData = (chunk: Buffer): void => {
      if (relaying && !client.write(chunk)) upstream.pause();
    };
    client.on('drain', () => {
      if (!intercepting) upstream.resume();
    });
    upstream.on('end', () => {
      if (relaying && !intercepting) client.end();
    });

    // Client → upstream, through the scanner.
    upstream.on('drain', () => {
      if (!intercepting) client.resume();
    });
    /** Pass client bytes on; false when a COM_CHANGE_USER took over. */
    const pass = (chunk: Buffer): boolean => {
      if (!relaying) return true;
      const { forward, intercepted } = scanner.push(chunk);
      let ok = true;
      for (const b of forward) ok = upstream.write(b) && ok;
      if (!ok) client.pause();
      if (intercepted) {
        void changeUser(intercepted);
        return false;
      }
      return true;
    };
    const onData = (chunk: Buffer): void => {
      pass(chunk);
    };

    const changeUser = async (initial: Buffer): Promise<void> => {
      intercepting = true;
      client.off('data', onData);
      client.pause();
      upstream.off('data', onUpstreamData);
      upstream.pause();
      try {
        const rest = await opts.onChangeUser(initial);
        if (client.destroyed || upstream.destroyed) return;
        intercepting = false;
        scanner.reset();
        upstream.on('data', onUpstreamData);
        if (!client.writableNeedDrain) upstream.resume();
        if (rest.length > 0 && !pass(rest)) return;
        client.on('data', onData);
        if (!upstream.writableNeedDrain) client.resume();
      } catch (err) {
        opts.log.info({ err: (err as Error).message }, 'COM_CHANGE_USER ended the connection');
        destroyBoth('change user failed');
      }
    };

    client.on('end', () => {
      if (relaying && !intercepting) upstream.end();
    });
    upstream.on('data', onUpstreamData);
    upstream.resume();
    if (fromClient.length === 0 || pass(fromClient)) {
      client.on('data', onData);
      client.resume();
    }
  });
}
