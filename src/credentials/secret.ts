import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A secret value that cannot leak by accident: string conversion, JSON, util.inspect and pino
 * serialisation all print `[redacted]`. Only `reveal()` gives the value, at the point of use.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  get length(): number {
    return this.#value.length;
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}
