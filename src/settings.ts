// The one schema of a JournalNode's tunable settings: name, default, range and meaning of each, written
// once. The node's configuration (journalnode/config.ts), the replica driver's options and the Raft core's
// configuration all use these names as they are; what a layer needs that is not a setting (ticks, derived
// bounds) is computed in one place, deriveReplicaOptions(). Pure data: the core may import its types.

interface IntSetting {
  kind: 'int';
  default: number;
  min: number;
  max: number;
  /** braft's name for the same flag, where it has one. */
  braft?: string;
  doc: string;
}

interface BoolSetting {
  kind: 'bool';
  default: boolean;
  braft?: string;
  doc: string;
}

interface EnumSetting<V extends string> {
  kind: 'enum';
  default: V;
  values: readonly V[];
  doc: string;
}

type Setting = IntSetting | BoolSetting | EnumSetting<string>;

const int = (d: number, min: number, max: number, doc: string, braft?: string): IntSetting => ({
  kind: 'int',
  default: d,
  min,
  max,
  doc,
  ...(braft ? { braft } : {}),
});

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export const SETTINGS = {
  // ---- Raft
  electionTimeoutMs: int(
    1000,
    50,
    600_000,
    'Election timeout; a follower campaigns after [T, 1.5 T) without a leader',
    'election_timeout_ms',
  ),
  electionHeartbeatFactor: int(
    10,
    2,
    1000,
    'Heartbeats per election timeout (the Raft tick is electionTimeoutMs / this)',
  ),
  snapshotIntervalS: int(
    3600,
    0,
    365 * 86400,
    'Snapshot after this long with new entries; 0 = only by log size',
    'snapshot_interval_s',
  ),
  snapshotLogBytes: int(
    256 << 20,
    1 << 10,
    2 ** 50,
    'Snapshot once this many entry bytes were applied since the last one',
  ),
  catchupMargin: int(
    1000,
    0,
    1e12,
    'A new peer becomes a voter only once within this many entries of the leader',
    'catchup_margin',
  ),
  sync: {
    kind: 'bool',
    default: true,
    braft: 'raft_sync',
    doc: 'fdatasync the Raft log before acknowledging (off only for tests)',
  } as BoolSetting,
  maxAppendBufferBytes: int(
    16 << 20,
    1 << 10,
    1 << 30,
    'Entry bytes one log write (one fdatasync) carries',
    'raft_max_append_buffer_size',
  ),
  leaderBatch: int(4096, 1, 1 << 20, 'Entries one log write (one fdatasync) carries', 'raft_leader_batch'),
  maxEntriesPerAppend: int(1024, 1, 1 << 20, 'Entries in one append message', 'raft_max_entries_size'),
  maxAppendBodyBytes: int(
    16 << 20,
    1 << 10,
    1 << 30,
    'Entry bytes in one append message; also the largest committed batch applied at once',
    'raft_max_body_size',
  ),
  maxLogSegmentBytes: int(
    64 << 20,
    1 << 16,
    1 << 30,
    'Size at which a Raft log segment file is closed',
    'raft_max_segment_size',
  ),
  logPreallocateBytes: int(
    4 << 20,
    0,
    1 << 30,
    'Zero-filled space kept ahead of the log end (faster fdatasync); 0 = off',
  ),
  maxLogCacheBytes: int(
    16 << 20,
    0,
    2 ** 31,
    'Recent log entries kept in memory, so replication rarely reads the disk',
  ),
  maxSnapshotChunkBytes: int(
    1 << 20,
    1 << 10,
    1 << 28,
    'Bytes per snapshot chunk a follower pulls',
    'raft_max_byte_count_per_rpc',
  ),
  applyBatch: int(1024, 1, 1 << 20, 'Committed entries applied per batch', 'raft_apply_batch'),
  maxInflightAppends: int(8, 1, 1024, 'Append messages in flight to one follower'),
  maxUncommittedBytes: int(
    256 << 20,
    1 << 16,
    2 ** 40,
    'Proposals beyond this many uncommitted bytes are refused with BUSY',
  ),
  keepEntriesAfterSnapshot: int(
    10_000,
    0,
    1e9,
    'Entries kept below a new snapshot, so a slightly lagging follower still gets appends',
  ),
  keepSnapshots: int(2, 1, 100, 'Snapshots kept on disk (a follower may still be fetching the previous one)'),
  // ---- Journal
  maxRecordBytes: int(1 << 20, 1, 1 << 28, 'Largest edit record; larger is refused with TOO_LARGE'),
  maxBatchBytes: int(8 << 20, 1, 1 << 28, 'Largest journal() batch; larger is refused with TOO_LARGE'),
  cacheBytesPerJournal: int(16 << 20, 0, 1 << 30, 'Recent batches each journal keeps in memory for tailing readers'),
  proposalTimeoutMs: int(
    20_000,
    100,
    3_600_000,
    'A write not applied within this long answers TIMEOUT (outcome unknown)',
  ),
  readTimeoutMs: int(10_000, 100, 3_600_000, 'A linearizable read not confirmed within this long answers TIMEOUT'),
  maxWaitMs: int(60_000, 0, 3_600_000, 'Longest long-poll a reader may ask for'),
  minTxnsRetained: int(
    1_000_000,
    0,
    Number.MAX_SAFE_INTEGER,
    'A purge (unless forced) keeps the last this many txids of a journal, and always its newest finalized segment',
  ),
  readRetentionWindowMs: int(
    600_000,
    0,
    86_400_000,
    'A purge (unless forced) keeps what a reader of this node read within this long',
  ),
  maxWaitingReads: int(
    10_000,
    1,
    1_000_000,
    'Long-polls waiting at once on a node, and apart linearizable reads awaiting confirmation; beyond, BUSY (retriable)',
  ),
  maxJournals: int(
    100,
    1,
    10_000,
    'Journals a cluster holds; a format that would create one more is refused with TOO_MANY_JOURNALS',
  ),
  // ---- Transport
  peerRequestTimeoutMs: int(5000, 100, 600_000, 'One request to a peer; a peer stream silent this long is cut'),
  maxPeerQueueBytes: int(64 << 20, 1 << 16, 2 ** 31, 'Bytes queued for one peer before messages are dropped'),
  formationPollMs: int(
    500,
    50,
    60_000,
    'While a new cluster forms: how often a node asks the nodes named in --peers whether they are all there',
  ),
  // ---- HTTP server
  httpRequestTimeoutMs: int(
    30_000,
    1000,
    3_600_000,
    'A client must send a whole request (headers and body) within this long',
  ),
  httpHeadersTimeoutMs: int(10_000, 1000, 3_600_000, "A client must send a request's headers within this long"),
  httpKeepAliveTimeoutMs: int(65_000, 1000, 3_600_000, 'An idle keep-alive connection is closed after this long'),
  maxConnections: int(
    10_000,
    64,
    1_000_000,
    "Connections open at once on the node's ports; at most the open-file limit less reservedFileDescriptors",
  ),
  maxConnectionsPerAddress: int(
    1000,
    1,
    1_000_000,
    'Connections open at once from one remote address (an IPv6 /64); at most half of maxConnections',
  ),
  reservedFileDescriptors: int(
    512,
    64,
    1_000_000,
    'File descriptors kept from connections for storage, streamed answers, peers and the process itself',
  ),
  tlsHandshakeTimeoutMs: int(5000, 100, 600_000, 'A connection must finish its TLS handshake within this long'),
  firstRequestTimeoutMs: int(
    5000,
    100,
    600_000,
    'A connection must send its first request within this long (after its TLS handshake)',
  ),
  maxResponseBytesInFlight: int(
    64 << 20,
    1 << 20,
    2 ** 40,
    'Answer bytes a node holds for its clients at once (a streamed answer counts its window); beyond, BUSY',
  ),
  maxResponseBytesPerConnection: int(
    16 << 20,
    1 << 20,
    2 ** 40,
    'Answer bytes one connection may hold at once (within maxResponseBytesInFlight); beyond, BUSY',
  ),
  responseStallTimeoutMs: int(
    15_000,
    1000,
    3_600_000,
    'An answer whose client takes none of its bytes for this long is cut and its budget released',
  ),
  logLevel: { kind: 'enum', default: 'info', values: LOG_LEVELS, doc: 'pino log level' } as EnumSetting<LogLevel>,
  logFormat: {
    kind: 'enum',
    default: 'auto',
    values: LOG_FORMATS,
    doc: 'json: one JSON object a line (pino); pretty: for a person; auto: pretty when stdout is a terminal, else json',
  } as EnumSetting<LogFormat>,
} satisfies Record<string, Setting>;

type ValueOf<S> = S extends IntSetting
  ? number
  : S extends BoolSetting
    ? boolean
    : S extends EnumSetting<infer V>
      ? V
      : never;

export type SettingName = keyof typeof SETTINGS;
export type Settings = { [K in SettingName]: ValueOf<(typeof SETTINGS)[K]> };
export type SettingSchema = (typeof SETTINGS)[SettingName];

export const DEFAULT_SETTINGS: Settings = Object.fromEntries(
  Object.entries(SETTINGS).map(([k, s]) => [k, s.default]),
) as Settings;

/** Why `value` is not a valid `name`, or null. */
export function checkSetting(name: SettingName, value: unknown): string | null {
  const s: Setting = SETTINGS[name];
  switch (s.kind) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value))
        return `expected an integer, got ${JSON.stringify(value)}`;
      if (value < s.min || value > s.max) return `${value} is outside [${s.min}, ${s.max}]`;
      return null;
    case 'bool':
      return typeof value === 'boolean' ? null : 'expected true or false';
    case 'enum':
      return s.values.includes(value as string) ? null : `expected one of ${s.values.join(', ')}`;
  }
}

/** Settings the Raft core reads under the same names. */
export const RAFT_SETTING_NAMES = [
  'maxEntriesPerAppend',
  'maxAppendBodyBytes',
  'maxInflightAppends',
  'maxUncommittedBytes',
  'applyBatch',
] as const satisfies readonly SettingName[];
export type RaftSettings = Pick<Settings, (typeof RAFT_SETTING_NAMES)[number]>;

/** Settings the replica driver reads under the same names (the core's included). */
export const REPLICA_SETTING_NAMES = [
  ...RAFT_SETTING_NAMES,
  'maxAppendBufferBytes',
  'leaderBatch',
  'snapshotLogBytes',
  'snapshotIntervalS',
  'keepEntriesAfterSnapshot',
  'proposalTimeoutMs',
  'readTimeoutMs',
  'catchupMargin',
] as const satisfies readonly SettingName[];
export type ReplicaSettings = Pick<Settings, (typeof REPLICA_SETTING_NAMES)[number]>;

export function pickSettings<K extends SettingName>(s: Settings, names: readonly K[]): Pick<Settings, K> {
  const out: Partial<Pick<Settings, K>> = {};
  for (const k of names) out[k] = s[k];
  return out as Pick<Settings, K>;
}
