// The dashboard's script: polls GET /ui/cluster once a second (the whole history on the first poll, the newest
// seconds after), keeps each node's per-second history and the events seen so far (a node that goes down
// keeps what it reported), and renders nodes, journals, integrity (alarms and damage), charts and events.
// Everything a peer sent is put in the page as text (textContent), never as markup.

const POLL_MS = 1000;
const WINDOW_S = 600;
const MAX_EVENTS = 100;
const COLORS = ['#2457c5', '#d9480f', '#2b8a3e', '#862e9c', '#c2255c', '#0b7285', '#5c940d'];

/** Per node: Map from second (Unix time) to that second's sample. */
const history = new Map();
const charts = { txns: null, fsync: null };
/** Every event seen, by identity: its key, or (for an event of one node) node, sequence and time. */
const events = new Map();
let haveFullHistory = false;

const $ = (id) => document.getElementById(id);

function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function cell(tr, field, text, cls) {
  const td = el('td', text, { 'data-field': field });
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function fmtTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

function mergeHistory(members) {
  for (const m of members) {
    if (!m.history) continue;
    let h = history.get(m.id);
    if (!h) {
      h = new Map();
      history.set(m.id, h);
    }
    const c = m.history;
    for (let i = 0; i < c.t.length; i++) h.set(c.t[i], { txns: c.txns[i], p50: c.fsyncP50Ms[i], p99: c.fsyncP99Ms[i] });
    const oldest = Math.max(...c.t, 0) - WINDOW_S;
    for (const t of h.keys()) if (t < oldest) h.delete(t);
  }
}

function renderHeader(c) {
  $('cluster').textContent = c.clusterId || '?';
  $('leader').textContent = c.leader || 'none';
  $('leader').className = c.leader ? '' : 'bad';
  $('term').textContent = String(c.term);
  $('served-by').textContent = c.servedBy;
  $('updated').textContent = fmtTime(c.nowMs);
  $('updated').setAttribute('data-now-ms', String(c.nowMs));
}

/** A node's damage not repaired yet (its /status `integrity.damage`; absent from older nodes). */
function openDamage(s) {
  return (s?.integrity?.damage || []).filter((d) => d.state !== 'repaired');
}

function health(m) {
  if (!m.reachable) return [`unreachable: ${m.error}`, 'bad'];
  if (m.status.fatal) return [`stopped: ${m.status.fatal}`, 'bad'];
  const damaged = openDamage(m.status);
  if (damaged.length > 0)
    return [`damaged: ${damaged.length} file${damaged.length > 1 ? 's' : ''} (repairing)`, 'warn'];
  return ['ok', 'ok'];
}

/** A latency's p50 / p99 in ms, or a dash when there is none lately. */
function percentiles(l) {
  return l ? `${l.p50Ms.toFixed(1)} / ${l.p99Ms.toFixed(1)}` : '—';
}

/**
 * Integrity: the leader's alarms (replicas that differ from the majority, or hold damage) and every node's own
 * damage records, open ones first; or when the leader last found every replica in agreement.
 */
function renderIntegrity(c) {
  const tbody = $('integrity').tBodies[0];
  tbody.replaceChildren();
  const leader = c.members.find((m) => m.id === c.leader && m.status && m.status.integrity);
  const check = leader ? leader.status.integrity.check : null;
  for (const a of check ? check.alarms : []) {
    const tr = el('tr', null, { 'data-kind': `alarm-${a.kind}` });
    cell(tr, 'what', `alarm: ${a.kind}`, 'bad');
    cell(tr, 'node', a.node);
    cell(tr, 'file', a.file || '—', 'muted');
    cell(tr, 'range', a.range);
    cell(tr, 'detail', a.detail, 'msg');
    cell(tr, 'since', fmtTime(a.sinceMs), 'muted');
    tbody.appendChild(tr);
  }
  for (const m of c.members) {
    for (const d of m.status?.integrity?.damage || []) {
      const tr = el('tr', null, { 'data-kind': `damage-${d.state}` });
      cell(
        tr,
        'what',
        `${d.kind} ${d.state}`,
        d.state === 'repaired' ? 'ok' : d.state === 'unrepairable' ? 'bad' : 'warn',
      );
      cell(tr, 'node', m.id);
      cell(tr, 'file', d.file, 'muted');
      cell(tr, 'range', d.range);
      cell(tr, 'detail', `${d.reason} (found by ${d.foundBy})${d.note ? `: ${d.note}` : ''}`, 'msg');
      cell(tr, 'since', fmtTime(d.changedAtMs), 'muted');
      tbody.appendChild(tr);
    }
  }
  if (tbody.children.length === 0) {
    const tr = el('tr');
    const when = check?.checkedAtMs
      ? `every replica agrees (compared at ${fmtTime(check.checkedAtMs)})`
      : 'not compared yet';
    tr.appendChild(el('td', `${when}; no damage found`, { colspan: '6', class: 'muted' }));
    tbody.appendChild(tr);
  }
}

function renderNodes(c) {
  const tbody = $('nodes').tBodies[0];
  tbody.replaceChildren();
  const leader = c.members.find((m) => m.id === c.leader && m.status);
  const followers = leader ? leader.status.followers : {};
  for (const m of c.members) {
    const s = m.status;
    const tr = el('tr', null, { 'data-node': m.id });
    if (s && s.state === 'leader') tr.className = 'leader';
    cell(tr, 'id', m.id);
    cell(tr, 'address', m.address, 'muted');
    cell(tr, 'member', m.role);
    const st = cell(tr, 'state', null);
    if (s) st.appendChild(el('span', s.state, { class: `pill ${s.state}` }));
    else st.textContent = '—';
    cell(tr, 'term', s ? s.term : '—', 'num');
    cell(tr, 'leader', s ? s.leader || 'none' : '—');
    cell(tr, 'commitIndex', s ? s.commitIndex : '—', 'num');
    cell(tr, 'appliedIndex', s ? s.appliedIndex : '—', 'num');
    cell(tr, 'lastIndex', s ? s.lastIndex : '—', 'num');
    cell(tr, 'snapshotIndex', s ? s.snapshotIndex : '—', 'num');
    const f = followers[m.id];
    cell(tr, 'matchIndex', f ? f.matchIndex : s && s.state === 'leader' ? s.lastIndex : '—', 'num');
    cell(
      tr,
      'lagEntries',
      f ? f.lagEntries : s && s.state === 'leader' ? 0 : '—',
      `num${f && f.lagEntries > 1000 ? ' warn' : ''}`,
    );
    const sync = s ? s.sync : null;
    cell(tr, 'sync', percentiles(sync), `num${sync && sync.p99Ms > 100 ? ' warn' : ''}`);
    const ack = f ? f.ack : null;
    cell(tr, 'ack', percentiles(ack), `num${ack && ack.p99Ms > 100 ? ' warn' : ''}`);
    const [text, cls] = health(m);
    cell(tr, 'health', text, cls);
    tbody.appendChild(tr);
  }
}

/** The journals as the leader has them (or, without a leader, the reachable node that applied the most). */
function journalSource(c) {
  const up = c.members.filter((m) => m.status);
  return up.find((m) => m.id === c.leader) || up.sort((a, b) => b.status.appliedIndex - a.status.appliedIndex)[0];
}

function renderJournals(c) {
  const tbody = $('journals').tBodies[0];
  tbody.replaceChildren();
  const src = journalSource(c);
  if (!src) return;
  for (const [jid, j] of Object.entries(src.status.journals).sort(([a], [b]) => a.localeCompare(b))) {
    const tr = el('tr', null, { 'data-jid': jid });
    cell(tr, 'jid', jid);
    cell(tr, 'promisedEpoch', j.promisedEpoch, 'num');
    cell(tr, 'lastWriterEpoch', j.lastWriterEpoch, 'num');
    cell(tr, 'writerId', j.writerId || '—');
    const open = j.segments.find((g) => g.inProgress);
    cell(
      tr,
      'inProgress',
      open ? `${open.firstTxId}–${open.lastTxId >= open.firstTxId ? open.lastTxId : '(empty)'}` : 'none',
    );
    cell(tr, 'lastTxId', j.lastTxId, 'num');
    const done = j.segments.filter((g) => !g.inProgress);
    cell(
      tr,
      'finalized',
      done.length ? `${done.length}: txids ${done[0].firstTxId}–${done[done.length - 1].lastTxId}` : 'none',
    );
    const per = c.members.map((m) => {
      const mj = m.status?.journals[jid];
      if (!mj) return `${m.id} —`;
      const behind = j.lastTxId - mj.lastTxId;
      return `${m.id} ${mj.lastTxId}${behind > 0 ? ` (−${behind})` : ''}`;
    });
    cell(tr, 'perNode', per.join(' · '), 'muted');
    tbody.appendChild(tr);
  }
  if (tbody.children.length === 0) {
    const tr = el('tr');
    tr.appendChild(el('td', 'no journal yet (qjm format)', { colspan: '8', class: 'muted' }));
    tbody.appendChild(tr);
  }
}

function mergeEvents(list) {
  for (const e of list) {
    const id = e.key || `${e.node}#${e.seq}#${e.atMs}`;
    const seen = events.get(id);
    if (!seen) {
      events.set(id, { ...e, nodes: [...e.nodes] });
      continue;
    }
    for (const n of e.nodes) if (!seen.nodes.includes(n)) seen.nodes.push(n);
  }
  const sorted = [...events.entries()].sort(([, a], [, b]) => a.atMs - b.atMs);
  for (const [id] of sorted.slice(0, Math.max(0, sorted.length - MAX_EVENTS))) events.delete(id);
}

function renderEvents(c) {
  const tbody = $('events').tBodies[0];
  tbody.replaceChildren();
  const list = [...events.values()].sort((a, b) => b.atMs - a.atMs);
  for (const e of list) {
    const tr = el('tr', null, { 'data-kind': e.kind });
    cell(tr, 'time', fmtTime(e.atMs), 'muted');
    cell(tr, 'nodes', e.nodes.length === c.members.length && e.nodes.length > 1 ? 'all' : e.nodes.join(', '));
    cell(
      tr,
      'kind',
      e.kind,
      e.kind === 'storage-failure' || e.kind === 'disk-full' || e.kind === 'unreachable'
        ? 'bad'
        : e.kind === 'fenced' || e.kind === 'election'
          ? 'warn'
          : '',
    );
    cell(tr, 'term', e.term === null ? '' : e.term, 'num');
    cell(tr, 'message', e.message, 'msg');
    tbody.appendChild(tr);
  }
  if (list.length === 0) {
    const tr = el('tr');
    tr.appendChild(el('td', 'nothing yet', { colspan: '5', class: 'muted' }));
    tbody.appendChild(tr);
  }
}

/** uPlot's columns: the seconds seen by any node, then one series per node and field. */
function chartData(ids, fields) {
  const ts = new Set();
  for (const id of ids) for (const t of (history.get(id) || new Map()).keys()) ts.add(t);
  const xs = [...ts].sort((a, b) => a - b);
  const cols = [xs];
  for (const id of ids) {
    const h = history.get(id) || new Map();
    for (const f of fields) cols.push(xs.map((t) => (h.has(t) ? h.get(t)[f] : null)));
  }
  return cols;
}

function drawChart(key, target, ids, fields, unit) {
  const data = chartData(ids, fields);
  const signature = ids.join(',');
  const existing = charts[key];
  const width = Math.max(300, $(target).clientWidth - 4);
  if (existing && existing.signature === signature) {
    if (existing.plot.width !== width) existing.plot.setSize({ width, height: 200 });
    existing.plot.setData(data);
    return;
  }
  if (existing) existing.plot.destroy();
  const series = [{}];
  ids.forEach((id, i) => {
    for (const f of fields) {
      series.push({
        label: fields.length > 1 ? `${id} ${f}` : id,
        stroke: COLORS[i % COLORS.length],
        width: f === 'p50' ? 1 : 1.6,
        dash: f === 'p50' ? [4, 3] : undefined,
        spanGaps: false,
        value: (_u, v) => (v === null || v === undefined ? '—' : `${v} ${unit}`),
      });
    }
  });
  const plot = new uPlot(
    {
      width,
      height: 200,
      series,
      // yAxisTop (chart-scale.js): one catch-up spike must not flatten every other line.
      scales: { x: { time: true }, y: { range: (u) => [0, yAxisTop(u.data.slice(1).flat())] } },
      axes: [{}, { size: 56 }],
      cursor: { drag: { x: false, y: false } },
    },
    data,
    $(target),
  );
  charts[key] = { plot, signature };
}

function renderCharts(c) {
  const ids = c.members.map((m) => m.id);
  drawChart('txns', 'chart-txns', ids, ['txns'], 'txns/s');
  drawChart('fsync', 'chart-fsync', ids, ['p50', 'p99'], 'ms');
}

function showBanner(text) {
  $('banner').textContent = text || '';
  $('banner').className = text ? 'shown' : '';
}

async function poll() {
  try {
    const r = await fetch(`/ui/cluster?historyS=${haveFullHistory ? 10 : WINDOW_S}`, { cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const c = await r.json();
    haveFullHistory = true;
    mergeHistory(c.members);
    mergeEvents(c.events);
    renderHeader(c);
    renderNodes(c);
    renderJournals(c);
    renderIntegrity(c);
    renderEvents(c);
    renderCharts(c);
    const down = c.members.filter((m) => !m.reachable).map((m) => `${m.id} (${m.error})`);
    showBanner(
      down.length
        ? `unreachable: ${down.join(', ')}`
        : c.leader
          ? ''
          : 'no leader: an election is under way, or a majority is down',
    );
  } catch (e) {
    showBanner(`cannot reach this node's dashboard port: ${e.message}; the figures below are stale`);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
