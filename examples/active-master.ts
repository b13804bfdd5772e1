// The README's active master as a program, for the operator's walkthrough: it fences every earlier writer,
// then journals --edits edits (text records such as "mkdir /dir7") in segments of --segment-edits, finalizing
// each full one as a NameNode does when it rolls its edit log, and exits. The last segment it leaves open, as
// a master that dies leaves it, so that `qjm finalize` has a dead writer's segment to close; --finalize-last
// closes it instead, as a master that stops cleanly does. It uses only the package's public entry point.
//
//   node dist/examples/active-master.js [--edits 100] [--segment-edits 50] [--finalize-last]
//        [--jid ns1] [--peers ID=HOST:PORT,...] [--certs-dir certs] [--user nn1]
//
// --peers defaults to QJM_PEERS (as qjm's); --certs-dir to QJM_CERTS_DIR, else ./certs; the user is the
// master's own certificate (client.nn1: role writer, journal ns1), never QJM_USER (the operator's).

import { parseArgs } from 'node:util';
import { QuorumJournalManager } from 'qjournal/libqjm';

interface Options {
  jid: string;
  peers: string[];
  certsDir: string;
  user: string;
  edits: number;
  segmentEdits: number;
  finalizeLast: boolean;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      edits: { type: 'string', default: '100' },
      'segment-edits': { type: 'string', default: '50' },
      'finalize-last': { type: 'boolean', default: false },
      jid: { type: 'string', default: 'ns1' },
      peers: { type: 'string', default: process.env.QJM_PEERS ?? '' },
      'certs-dir': { type: 'string', default: process.env.QJM_CERTS_DIR ?? 'certs' },
      user: { type: 'string', default: 'nn1' },
    },
  });
  const count = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a whole number of at least 1, got ${v}`);
    return n;
  };
  const peers = values.peers.split(',').filter((p) => p.length > 0);
  if (peers.length === 0) throw new Error('no JournalNodes: give --peers ID=HOST:PORT,... or set QJM_PEERS');
  return {
    jid: values.jid,
    peers,
    certsDir: values['certs-dir'],
    user: values.user,
    edits: count('edits', values.edits),
    segmentEdits: count('segment-edits', values['segment-edits']),
    finalizeLast: values['finalize-last'],
  };
}

async function main(o: Options): Promise<void> {
  const qjm = new QuorumJournalManager({
    journalId: o.jid,
    peers: o.peers,
    writerId: o.user,
    tls: { certsDir: o.certsDir, user: o.user },
  });
  try {
    const { epoch, lastTxId } = await qjm.recoverUnfinalizedSegments(); // fences every earlier writer
    console.log(`${o.user}: active with epoch ${epoch}; the journal ends at txid ${lastTxId}`);
    const segments: string[] = [];
    let txid = lastTxId;
    while (txid < lastTxId + o.edits) {
      const first = txid + 1;
      const last = Math.min(lastTxId + o.edits, txid + o.segmentEdits);
      const out = await qjm.startLogSegment(first, -64);
      for (let t = first; t <= last; t++) {
        // write() never waits on the network; drain() when the buffer is past its high-water mark.
        if (!out.write(new TextEncoder().encode(`mkdir /dir${t}`))) await out.drain();
      }
      txid = await out.flush(); // durable on a quorum
      const open = txid === lastTxId + o.edits && !o.finalizeLast;
      if (!open) await qjm.finalizeLogSegment(first, txid);
      segments.push(`${first}-${txid}${open ? ' (left open)' : ''}`);
    }
    console.log(
      `${o.user}: wrote txids ${lastTxId + 1}-${txid} in segments ${segments.join(', ')}${o.finalizeLast ? '' : '; it stops as a master that dies does: qjm finalize closes the open segment'}`,
    );
  } finally {
    await qjm.close();
  }
}

main(options(process.argv.slice(2))).catch((e: unknown) => {
  const err = e as Error & { code?: string };
  console.error(`active-master: ${err.code ? `${err.code}: ` : ''}${err.message}`);
  process.exitCode = 1;
});
