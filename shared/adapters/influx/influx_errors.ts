/**
 * Errors of the InfluxDB adapter that callers are meant to catch.
 *
 * @module
 */

/** An answer of InfluxDB that retrying will not change. */
export class InfluxError extends Error {
  override name = "InfluxError";
  /** The HTTP status. */
  readonly status: number;
  /**
   * @param message what failed, naming the server's answer
   * @param status the HTTP status
   * @param options the cause
   */
  constructor(message: string, status: number, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
  }
}

/** InfluxDB refused the credentials (401) or their permissions (403). */
export class InfluxAuthError extends InfluxError {
  override name = "InfluxAuthError";
}

/** The database (or bucket mapping) or the endpoint does not exist (404). */
export class InfluxNotFoundError extends InfluxError {
  override name = "InfluxNotFoundError";
}
