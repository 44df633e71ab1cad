// Small helpers for unit tests that feed packet readers through in-process streams.
import { once } from 'node:events';
import type { PassThrough } from 'node:stream';
import { expect } from 'vitest';
import { KeylessError } from '../../src/errors.ts';

/** Write each chunk as its own 'data' event, waiting for it to be emitted. */
export async function feed(s: PassThrough, chunks: readonly Buffer[]): Promise<void> {
  for (const c of chunks) {
    if (c.length === 0) continue;
    const seen = once(s, 'data');
    s.write(c);
    await seen;
  }
}

/** Resolve to the KeylessError code a promise rejects with. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(KeylessError);
    return (err as KeylessError).code;
  }
  throw new Error('expected a rejection');
}
