// The integrity metrics of a node (GET /metrics): bytes scrubbed and passes, damage found by kind and by who
// found it, files still damaged, repairs by outcome, and on the leader the alarms of its comparison of the
// replicas. Kept by the integrity machinery's hooks (node-integrity.ts), on the node's registry.

import client from 'prom-client';
import type { IntegrityHooks } from '../integrity/node-integrity.js';

export class IntegrityMetrics {
  private readonly scrubBytes: client.Counter<'kind'>;
  private readonly scrubPasses: client.Counter;
  private readonly lastPassSeconds: client.Gauge;
  private readonly lastPassEnd: client.Gauge;
  private readonly corruptions: client.Counter<'kind' | 'found_by'>;
  private readonly damaged: client.Gauge<'kind'>;
  private readonly repairs: client.Counter<'kind' | 'outcome'>;
  private readonly alarms: client.Gauge<'kind'>;
  private readonly alarmsRaised: client.Counter<'kind'>;

  constructor(r: client.Registry) {
    const registers = [r];
    this.scrubBytes = new client.Counter({
      name: 'qjournal_scrub_bytes_total',
      help: 'Bytes the scrubber read and checked, by kind of file (log, segment, snapshot)',
      labelNames: ['kind'],
      registers,
    });
    this.scrubPasses = new client.Counter({
      name: 'qjournal_scrub_passes_total',
      help: 'Scrub passes done',
      registers,
    });
    this.lastPassSeconds = new client.Gauge({
      name: 'qjournal_scrub_last_pass_seconds',
      help: 'How long the last scrub pass took',
      registers,
    });
    this.lastPassEnd = new client.Gauge({
      name: 'qjournal_scrub_last_pass_end_seconds',
      help: 'When the last scrub pass ended (Unix time): alert when it is older than a day',
      registers,
    });
    this.corruptions = new client.Counter({
      name: 'qjournal_corruptions_total',
      help: 'Damage found on this node, by kind of file and by who found it (scrub, read, start-up)',
      labelNames: ['kind', 'found_by'],
      registers,
    });
    this.damaged = new client.Gauge({
      name: 'qjournal_damaged_files',
      help: 'Files found damaged and not repaired yet, by kind',
      labelNames: ['kind'],
      registers,
    });
    this.repairs = new client.Counter({
      name: 'qjournal_repairs_total',
      help: 'Repairs, by kind of file and outcome (repaired, failed: tried again later)',
      labelNames: ['kind', 'outcome'],
      registers,
    });
    this.alarms = new client.Gauge({
      name: 'qjournal_integrity_alarms',
      help: 'Leader only: replicas that differ from the majority or hold damage now, by kind (segment, digest, log, damage)',
      labelNames: ['kind'],
      registers,
    });
    this.alarmsRaised = new client.Counter({
      name: 'qjournal_integrity_alarms_raised_total',
      help: 'Leader only: integrity alarms raised, by kind',
      labelNames: ['kind'],
      registers,
    });
  }

  hooks(): IntegrityHooks {
    return {
      onScrubBytes: (kind, bytes) => this.scrubBytes.inc({ kind }, bytes),
      onScrubPass: (p) => {
        this.scrubPasses.inc();
        if (p.endedMs !== null) {
          this.lastPassSeconds.set((p.endedMs - p.startedMs) / 1000);
          this.lastPassEnd.set(p.endedMs / 1000);
        }
      },
      onFound: (r) => {
        this.corruptions.inc({ kind: r.kind, found_by: r.foundBy });
        this.damaged.inc({ kind: r.kind });
      },
      onChange: (r, from) => {
        if (r.state === 'repaired' && from !== 'repaired') this.damaged.dec({ kind: r.kind });
      },
      onRepairOutcome: (kind, ok) => this.repairs.inc({ kind, outcome: ok ? 'repaired' : 'failed' }),
      onAlarmRaised: (a) => {
        this.alarms.inc({ kind: a.kind });
        this.alarmsRaised.inc({ kind: a.kind });
      },
      onAlarmCleared: (a) => this.alarms.dec({ kind: a.kind }),
    };
  }
}
