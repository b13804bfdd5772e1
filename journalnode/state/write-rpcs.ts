// The journal's write RPCs (POST /qjm/<rpc>) and the command each carries: one list, shared by the routes
// (routes-qjm.ts) and the authorization table (authz.ts).

export const WRITE_OPS = {
  format: 'format',
  newEpoch: 'newEpoch',
  startLogSegment: 'startSegment',
  journal: 'appendRecords',
  finalizeLogSegment: 'finalizeSegment',
  dropSegment: 'dropSegment',
  purgeLogs: 'purge',
} as const;
