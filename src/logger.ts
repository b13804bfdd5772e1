// The one logging interface of qjournal: pino's argument order (fields first, then the message), so a pino
// logger is passed in as it is, and the core, the driver, the state machine and the transport log alike.

export interface Logger {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
