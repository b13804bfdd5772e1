// The one logging interface of qjournal: pino's argument order (fields first, then the message), so a pino
// logger is passed in as it is, and the core, the driver, the state machine and the transport log alike.

export interface Logger {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * One warning that anyone on the network can provoke (a refused handshake, a refused request), logged at most
 * once per `intervalMs` with the count of those left out since: a scanner or a misbehaving peer must not
 * flood the log.
 */
export function rateLimitedWarning(
  logger: Logger,
  message: string,
  intervalMs: number,
  now: () => number = Date.now,
): (fields: object) => void {
  let lastLogMs = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (fields) => {
    const t = now();
    if (t - lastLogMs < intervalMs) {
      suppressed++;
      return;
    }
    logger.warn({ ...fields, suppressedSinceLast: suppressed }, message);
    lastLogMs = t;
    suppressed = 0;
  };
}
