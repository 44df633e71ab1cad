// Errors as Vault sends them: `{"errors":[...]}` with the status codes of RespondErrorCommon.

/** Go's hashicorp/go-multierror text: "1 error occurred:\n\t* A\n\n". */
export function multierror(messages: readonly string[]): string {
  const head = messages.length === 1 ? '1 error occurred:' : `${messages.length} errors occurred:`;
  return `${head}\n${messages.map((m) => `\t* ${m}`).join('\n')}\n\n`;
}

/** Thrown inside handlers; the server turns it into `{"errors": errors}` with `status`. */
export class VaultHttpError extends Error {
  readonly status: number;
  readonly errors: string[];

  constructor(status: number, errors: string[]) {
    super(errors[0] ?? `status ${status}`);
    this.name = 'VaultHttpError';
    this.status = status;
    this.errors = errors;
  }
}

/** `logical.ErrorResponse`: 400 with the plain message. */
export function badRequest(message: string): VaultHttpError {
  return new VaultHttpError(400, [message]);
}

/** Read finds nothing: 404 `{"errors":[]}`. */
export function notFound(): VaultHttpError {
  return new VaultHttpError(404, []);
}

/** A valid token without an ACL grant. */
export function permissionDenied(): VaultHttpError {
  return new VaultHttpError(403, [multierror(['permission denied'])]);
}

export function unsupportedPath(): VaultHttpError {
  return new VaultHttpError(404, [multierror(['unsupported path'])]);
}

export function unsupportedOperation(): VaultHttpError {
  return new VaultHttpError(405, [multierror(['unsupported operation'])]);
}

/** Any other internal error: 500 with the multierror text. */
export function internalError(message: string): VaultHttpError {
  return new VaultHttpError(500, [multierror([message])]);
}
