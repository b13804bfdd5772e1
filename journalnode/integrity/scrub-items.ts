// What a scrub pass reads, as items the scrubber steps through: every finalized journal segment (checked
// against the CRC recorded when it was written), every closed Raft log segment (every frame, as a read checks
// it), and every snapshot (its manifest, and each of its files whose bytes were not already checked as a
// finalized segment in this pass: snapshots are hard links, so a finalized segment is read once a pass).

import zlib from 'node:zlib';
import type { DiskLog } from '../../src/storage/raft-log.js';
import { preadSync } from '../../src/storage/files.js';
import type { FileSystem } from '../../src/storage/file-system.js';
import type { JournalStateMachine } from '../state/journal-state-machine.js';
import type { SegmentScan } from '../state/segment-file.js';
import { SnapshotError } from '../state/snapshot-store.js';
import type { ScrubItem } from './scrubber.js';

export interface ScrubbedStorage {
  fileSystem: FileSystem;
  diskLog: DiskLog;
  stateMachine: JournalStateMachine;
}

/** The items of one pass: finalized segments first (the snapshots' check skips what they covered), then the log, then snapshots. */
export function scrubItems(s: ScrubbedStorage): ScrubItem[] {
  const checkedFiles = new Set<string>();
  return [...segmentItems(s, checkedFiles), ...logItems(s.diskLog), ...snapshotItems(s, checkedFiles)];
}

function segmentItems(s: ScrubbedStorage, checkedFiles: Set<string>): ScrubItem[] {
  const out: ScrubItem[] = [];
  for (const journal of s.stateMachine.allJournals()) {
    for (const seg of journal.segments) {
      if (seg.inProgress) continue;
      let at: SegmentScan | null = null;
      out.push({
        kind: 'segment',
        file: seg.path,
        range: `journal ${journal.jid} txids ${seg.firstTxId}-${seg.lastTxId}`,
        step: (maxBytes) => {
          // Purged, or the journal formatted again, since the pass started: not damage.
          if (s.stateMachine.journal(journal.jid) !== journal || !journal.segments.includes(seg)) return null;
          // Checked (sound or damaged: a damaged one is reported once, as the segment), the snapshots skip it.
          const checked = () => {
            const id = s.fileSystem.stat(seg.path)?.fileId;
            if (id !== undefined) checkedFiles.add(id);
          };
          let r: ReturnType<typeof seg.scrubStep>;
          try {
            r = seg.scrubStep(at, maxBytes);
          } catch (e) {
            checked();
            throw e;
          }
          at = r.at;
          if (r.done) checked();
          return { bytes: r.bytes, done: r.done };
        },
      });
    }
  }
  return out;
}

function logItems(log: DiskLog): ScrubItem[] {
  return log.closedSegments().map((seg) => {
    let next = seg.first;
    return {
      kind: 'log',
      file: seg.file,
      range: `Raft log entries ${seg.first}-${seg.last}`,
      step: (maxBytes) => {
        const r = log.scrubStep(seg.file, next, maxBytes);
        if (r === null) return null;
        next = r.next;
        return { bytes: r.bytes, done: next > seg.last };
      },
    };
  });
}

/** A snapshot: its manifest first, then its files, each read from start to end with a running CRC. */
function snapshotItems(s: ScrubbedStorage, checkedFiles: Set<string>): ScrubItem[] {
  const store = s.stateMachine.snapshots;
  return store.list().map((index) => {
    let files: { jid: string; file: string; sizeBytes: number; crc32: number }[] | null = null;
    let i = 0;
    let offset = 0;
    let crc = 0;
    let skipped = false;
    return {
      kind: 'snapshot',
      file: store.dirOf(index),
      range: `snapshot ${index}`,
      step: (maxBytes) => {
        if (files === null) {
          const m = store.manifestOf(index);
          if (m === null) return null; // pruned
          files = m.journals.flatMap((j) => j.segments.map((seg) => ({ jid: j.jid, ...seg })));
          return { bytes: 0, done: files.length === 0 };
        }
        const f = files[i];
        if (!f) return { bytes: 0, done: true };
        const p = store.filePath(index, f.jid, f.file);
        const st = s.fileSystem.stat(p);
        if (st === null) {
          if (!s.fileSystem.stat(store.dirOf(index))) return null; // pruned meanwhile
          throw Object.assign(new SnapshotError(`snapshot ${index}: ${f.jid}/${f.file} is missing`), { file: p });
        }
        try {
          return readSnapshotFile(p, st.fileId, maxBytes);
        } catch (e) {
          // Named after the file that failed to read (EIO), not the snapshot.
          throw (e as { file?: unknown }).file === undefined ? Object.assign(e as Error, { file: p }) : e;
        }
      },
    };
    function readSnapshotFile(p: string, fileId: string, maxBytes: number): { bytes: number; done: boolean } {
      const f = files![i]!;
      let bytes = 0;
      if (offset === 0 && checkedFiles.has(fileId)) {
        skipped = true; // the same bytes were checked as a finalized segment in this pass
        offset = f.sizeBytes;
      } else {
        const handle = s.fileSystem.open(p, 'r');
        try {
          const chunk = preadSync(handle, offset, Math.min(maxBytes, f.sizeBytes - offset));
          if (chunk.byteLength === 0)
            throw Object.assign(
              new SnapshotError(`snapshot ${index}: ${f.jid}/${f.file} is shorter than its manifest says`),
              {
                file: p,
                offset,
              },
            );
          crc = zlib.crc32(chunk, crc);
          offset += chunk.byteLength;
          bytes = chunk.byteLength;
        } finally {
          handle.close();
        }
      }
      if (offset >= f.sizeBytes) {
        if (!skipped && crc >>> 0 !== f.crc32 >>> 0)
          throw Object.assign(
            new SnapshotError(`snapshot ${index}: ${f.jid}/${f.file} does not match the CRC of its manifest`),
            { file: p, offset: 0 },
          );
        i++;
        offset = 0;
        crc = 0;
        skipped = false;
      }
      return { bytes, done: i >= files!.length };
    }
  });
}
