// The Weir console: a hash-routed page per view, each built from admin API calls only
// (docs/admin-api.md). No framework, no build step: the broker serves this file as is.

const main = document.getElementById('main');
const statusBar = document.getElementById('status');
let token = sessionStorage.getItem('weir-token') || '';
let timers = [];

// ---- API ----------------------------------------------------------------------------------
async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token) headers['Authorization'] = 'Bearer ' + token;
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { ...options, headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  if (r.status === 401) {
    document.getElementById('token-box').hidden = false;
    throw new Error('this admin listener needs a token: enter it above');
  }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || ('HTTP ' + r.status));
  return data;
}

function say(text, ok = true) {
  statusBar.textContent = text;
  statusBar.className = ok ? 'ok' : 'error';
}

// ---- DOM helpers ----------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(c ?? ''));
  return e;
}
function table(headers, rows) {
  return el('table', {}, el('thead', {}, el('tr', {}, headers.map(h => el('th', {}, h)))),
    el('tbody', {}, rows.map(r => el('tr', {}, r.map(c => c instanceof Node ? el('td', {}, c)
      : el('td', { class: typeof c === 'number' ? 'num' : undefined }, String(c ?? '')))))));
}
const field = (label, input) => el('label', {}, label, input);
const input = (id, attrs = {}) => el('input', { id, ...attrs });
const val = id => document.getElementById(id).value.trim();
function bytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}
const enc = encodeURIComponent;
function every(ms, f) { timers.push(setInterval(f, ms)); }

// A member's assigned partitions by topic, as text ("orders: 0, 1; audit: 2").
const assigned = a => Object.entries(a || {}).map(([t, ps]) => `${t}: ${ps.join(', ')}`).join('; ');

// A small line chart of `points` (numbers), as an inline SVG.
function spark(points, w = 120, h = 24) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'spark'); svg.setAttribute('width', w); svg.setAttribute('height', h);
  const max = Math.max(1, ...points);
  const step = points.length > 1 ? w / (points.length - 1) : 0;
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('fill', 'none'); line.setAttribute('stroke', '#e63946');
  line.setAttribute('points', points.map((p, i) => `${i * step},${h - 2 - (p / max) * (h - 4)}`).join(' '));
  svg.append(line);
  return svg;
}

// ---- Pages ----------------------------------------------------------------------------------
async function overview() {
  const o = await api('/v1/overview');
  let last = { t: Date.now(), offsets: o.log_end_offsets, in: o.bytes_in, out: o.bytes_out };
  const rate = el('b', {}, '–');
  const bytesIn = el('b', {}, '–');
  const bytesOut = el('b', {}, '–');
  const card = (k, v) => el('div', { class: 'card' }, k, el('b', {}, String(v)));
  main.replaceChildren(el('h2', {}, 'Overview'),
    el('div', { class: 'cards' },
      card('Version', o.version), card('Node', o.node_id),
      card('Uptime', Math.round(o.uptime_ms / 1000) + ' s'),
      card('Topics', o.topics), card('Partitions', o.partitions),
      card('Under-replicated', o.under_replicated_partitions),
      card('Groups', o.groups), card('Share groups', o.share_groups),
      card('Disk', bytes(o.disk_bytes)),
      el('div', { class: 'card' }, 'Records in / s', rate),
      el('div', { class: 'card' }, 'Bytes in / s', bytesIn),
      el('div', { class: 'card' }, 'Bytes out / s', bytesOut)),
    el('h3', {}, 'Brokers'),
    table(['node', 'host', 'port', 'rack'],
      (o.cluster.brokers || []).map(b => [b.node_id, b.host, b.port, b.rack])),
    el('p', {}, `Mode: ${o.cluster.mode}, cluster id ${o.cluster.cluster_id}, controller ${o.cluster.controller_id ?? '–'}`));
  every(2000, async () => {
    const n = await api('/v1/overview');
    const now = Date.now();
    const per_s = (a, b) => (a - b) * 1000 / (now - last.t);
    rate.textContent = per_s(n.log_end_offsets, last.offsets).toFixed(1);
    bytesIn.textContent = bytes(Math.round(per_s(n.bytes_in, last.in)));
    bytesOut.textContent = bytes(Math.round(per_s(n.bytes_out, last.out)));
    last = { t: now, offsets: n.log_end_offsets, in: n.bytes_in, out: n.bytes_out };
  });
}

async function topics(params) {
  const search = params.get('search') || '';
  const after = params.get('after');
  const q = new URLSearchParams({ limit: '50', search, internal: 'false' });
  if (after) q.set('after', after);
  const page = await api('/v1/topics?' + q);
  // Records in per second of each listed topic, from two readings of its high watermarks.
  const rates = new Map(page.topics.map(t => [t.name, el('span', { class: 'rate' }, '–')]));
  let last = { t: Date.now(), hw: new Map(page.topics.map(t => [t.name, t.high_watermarks])) };
  every(5000, async () => {
    const next = await api('/v1/topics?' + q);
    const now = Date.now();
    for (const t of next.topics) {
      const before = last.hw.get(t.name);
      const cell = rates.get(t.name);
      if (cell && before !== undefined) {
        cell.textContent = (Math.max(0, t.high_watermarks - before) * 1000 / (now - last.t)).toFixed(1);
      }
    }
    last = { t: now, hw: new Map(next.topics.map(t => [t.name, t.high_watermarks])) };
  });
  main.replaceChildren(el('h2', {}, 'Topics'),
    el('form', { class: 'inline', id: 'topic-search', onsubmit: e => {
      e.preventDefault(); location.hash = '#/topics?search=' + enc(val('search')); } },
      field('Search', input('search', { value: search })), el('button', {}, 'Search')),
    el('p', {}, `${page.total} topic(s)`),
    table(['name', 'partitions', 'records', 'records in / s', 'size', 'retention.ms'],
      page.topics.map(t => [el('a', { href: '#/topic/' + enc(t.name) }, t.name), t.partitions,
        t.records, rates.get(t.name), bytes(t.size_bytes), t.retention_ms])),
    page.next ? el('a', { id: 'next-page', href: `#/topics?search=${enc(search)}&after=${enc(page.next)}` }, 'Next page →') : '',
    el('h3', {}, 'Create a topic'),
    el('form', { class: 'inline', id: 'create-topic', onsubmit: async e => {
      e.preventDefault();
      const configs = {};
      for (const line of val('new-configs').split(',').filter(Boolean)) {
        const [k, ...v] = line.split('='); configs[k.trim()] = v.join('=').trim();
      }
      try {
        const name = val('new-name');
        await api('/v1/topics', { method: 'POST', body: {
          name, partitions: Number(val('new-partitions') || -1), configs } });
        say(`created topic ${name}`);
        location.hash = '#/topic/' + enc(name);
      } catch (err) { say(err.message, false); }
    } },
      field('Name', input('new-name', { required: true })),
      field('Partitions', input('new-partitions', { type: 'number', min: 1, value: 1 })),
      field('Configs (k=v, …)', input('new-configs', { placeholder: 'retention.ms=3600000' })),
      el('button', { id: 'create' }, 'Create')));
}

async function topic(name) {
  const [t, c] = await Promise.all([api('/v1/topics/' + enc(name)),
    api(`/v1/cluster/partitions?topic=${enc(name)}&limit=10000`)]);
  // Every partition with its leader and replicas; offsets and sizes of those this broker hosts.
  const hosted = new Map(t.partitions.map(p => [p.partition, p]));
  const nodes = ids => ids.join(', ');
  main.replaceChildren(el('h2', {}, 'Topic ', name),
    el('p', {}, `id ${t.topic_id}`),
    table(['partition', 'leader', 'replicas', 'in sync', 'log start', 'log end', 'high watermark', 'size', ''],
      c.partitions.map(s => {
        const p = hosted.get(s.partition);
        const here = f => (p ? f(p) : '–');
        return [s.partition, s.offline ? 'offline' : (s.leader ?? '–'), nodes(s.replicas), nodes(s.isr),
          here(p => p.log_start_offset), here(p => p.log_end_offset), here(p => p.high_watermark),
          here(p => bytes(p.size_bytes)),
          el('a', { href: `#/messages?topic=${enc(name)}&partition=${s.partition}` }, 'browse')];
      })),
    el('h3', {}, 'Configs'),
    el('form', { class: 'inline', id: 'alter-config', onsubmit: async e => {
      e.preventDefault();
      try {
        await api(`/v1/topics/${enc(name)}/configs`, { method: 'PATCH',
          body: { set: { [val('cfg-name')]: val('cfg-value') } } });
        say('config changed'); route();
      } catch (err) { say(err.message, false); }
    } },
      field('Name', input('cfg-name', { list: 'cfg-names' })), field('Value', input('cfg-value')),
      el('datalist', { id: 'cfg-names' }, t.configs.map(c => el('option', { value: c.name }))),
      el('button', {}, 'Set')),
    table(['name', 'value', 'default'], t.configs.map(c => [c.name, c.value, c.default ? 'yes' : ''])),
    el('button', { class: 'danger', id: 'delete-topic', onclick: async () => {
      if (!confirm(`Delete topic ${name} and all its records?`)) return;
      try {
        await api('/v1/topics/' + enc(name), { method: 'DELETE' });
        say(`deleted topic ${name}`); location.hash = '#/topics';
      } catch (err) { say(err.message, false); }
    } }, 'Delete topic'));
}

async function groups() {
  const [g, s] = await Promise.all([api('/v1/groups?limit=200'), api('/v1/share-groups?limit=200')]);
  main.replaceChildren(el('h2', {}, 'Consumer groups'),
    table(['group', 'type', 'state'], g.groups.map(x => [
      el('a', { href: '#/group/' + enc(x.group_id) }, x.group_id), x.protocol_type, x.state])),
    el('h2', {}, 'Share groups'),
    table(['group', 'state'], s.share_groups.map(x => [
      el('a', { href: '#/share-group/' + enc(x.group_id) }, x.group_id), x.state])));
}

const lagHistory = new Map(); // "group topic/partition" -> recent lags, kept for this tab
function lagChart(group, o) {
  const key = `${group} ${o.topic}/${o.partition}`;
  const h = lagHistory.get(key) || [];
  h.push(o.lag ?? 0);
  if (h.length > 60) h.shift();
  lagHistory.set(key, h);
  return spark(h);
}

async function group(id) {
  const g = await api('/v1/groups/' + enc(id));
  const topics = [...new Set(g.offsets.map(o => o.topic))];
  const preview = el('div', { id: 'reset-preview' });
  const body = () => {
    const to = val('reset-to');
    const b = { topic: val('reset-topic') || undefined, to };
    if (to === 'offset') b.offset = Number(val('reset-value'));
    if (to === 'shift') b.shift = Number(val('reset-value'));
    if (to === 'timestamp') b.timestamp_ms = Date.parse(val('reset-value'));
    return b;
  };
  const lagTable = el('div', { id: 'lag' });
  const drawLag = grp => lagTable.replaceChildren(table(['topic', 'partition', 'committed', 'high watermark', 'lag', 'history'],
    grp.offsets.map(o => [o.topic, o.partition, o.committed_offset, o.high_watermark, o.lag, lagChart(id, o)])));
  drawLag(g);
  every(5000, async () => drawLag(await api('/v1/groups/' + enc(id))));
  main.replaceChildren(el('h2', {}, 'Group ', id),
    el('p', {}, `state ${g.state}, protocol ${g.protocol_type} ${g.protocol}`),
    el('h3', {}, 'Members'),
    table(['member', 'instance', 'client', 'host', 'assigned partitions'],
      g.members.map(m => [m.member_id, m.group_instance_id, m.client_id, m.client_host,
        assigned(m.assignment)])),
    el('h3', {}, 'Offsets and lag'), lagTable,
    el('h3', {}, 'Reset offsets'),
    el('p', {}, 'Only while the group has no members. Preview first, then apply.'),
    el('form', { class: 'inline', id: 'reset-form', onsubmit: e => e.preventDefault() },
      field('Topic', el('select', { id: 'reset-topic' }, el('option', { value: '' }, '(all)'),
        topics.map(t => el('option', { value: t }, t)))),
      field('To', el('select', { id: 'reset-to' }, ['earliest', 'latest', 'offset', 'shift', 'timestamp']
        .map(t => el('option', { value: t }, t)))),
      field('Offset / shift / time', input('reset-value', { placeholder: '2026-01-01T00:00:00Z' })),
      el('button', { id: 'reset-preview-btn', onclick: async () => {
        try {
          const r = await api(`/v1/groups/${enc(id)}/reset-offsets`, { method: 'POST', body: { ...body(), dry_run: true } });
          preview.replaceChildren(el('p', {}, 'Preview:'), table(['topic', 'partition', 'current', 'new'],
            r.partitions.map(p => [p.topic, p.partition, p.current_offset, p.new_offset])),
          el('button', { id: 'reset-apply', onclick: async () => {
            try {
              await api(`/v1/groups/${enc(id)}/reset-offsets`, { method: 'POST', body: { ...body(), dry_run: false } });
              say('offsets reset'); route();
            } catch (err) { say(err.message, false); }
          } }, 'Apply'));
        } catch (err) { say(err.message, false); }
      } }, 'Preview')),
    preview,
    el('p', {}, el('button', { class: 'danger', id: 'delete-group', onclick: async () => {
      if (!confirm(`Delete group ${id}?`)) return;
      try { await api('/v1/groups/' + enc(id), { method: 'DELETE' }); say('deleted group ' + id); location.hash = '#/groups'; }
      catch (err) { say(err.message, false); }
    } }, 'Delete group')));
}

async function shareGroup(id) {
  const g = await api('/v1/share-groups/' + enc(id));
  main.replaceChildren(el('h2', {}, 'Share group ', id),
    el('p', {}, `state ${g.state}, epoch ${g.group_epoch}, dead-letter topic ${g.dead_letter_topic ?? '–'}`),
    table(['member', 'client', 'host', 'topics', 'assigned partitions'], g.members.map(m => [m.member_id, m.client_id, m.client_host,
      m.subscribed_topics.join(', '), assigned(m.assignment)])),
    table(['topic', 'partition', 'start', 'end', 'available', 'acquired', 'dead-letter pending', 'lag', 'history'],
      g.partitions.map(p => [p.topic, p.partition, p.start_offset, p.end_offset, p.available, p.acquired, p.dead_letter_pending, p.lag, lagChart(id, p)])));
}

function decode(b64) {
  if (b64 === null) return null;
  return Uint8Array.from(atob(b64), c => c.charCodeAt(0));
}
function show(b64, mode) {
  const b = decode(b64);
  if (b === null) return el('i', {}, 'null');
  if (mode === 'hex') return el('pre', {}, [...b].map(x => x.toString(16).padStart(2, '0')).join(' '));
  const text = new TextDecoder().decode(b);
  if (mode === 'json') {
    try { return el('pre', {}, JSON.stringify(JSON.parse(text), null, 2)); } catch { /* not JSON */ }
  }
  return el('pre', {}, text);
}

const MAX_ROWS = 500; // rows a followed window keeps
async function messages(params) {
  const topic = params.get('topic') || '';
  const rows = el('tbody', {});
  let next = null, follow = null;
  const render = (recs, mode, append) => {
    if (!append) rows.replaceChildren();
    for (const r of recs) {
      rows.append(el('tr', { class: 'record' }, el('td', { class: 'num' }, String(r.offset)),
        el('td', {}, new Date(r.timestamp_ms).toISOString()),
        el('td', {}, show(r.key, mode)), el('td', {}, show(r.value, mode)),
        el('td', {}, r.headers.map(h => el('div', {}, h.key + ': ', show(h.value, 'text'))))));
    }
    while (rows.children.length > MAX_ROWS) rows.firstChild.remove();
  };
  const load = async (append) => {
    const q = new URLSearchParams({ partition: val('m-partition') || '0', limit: val('m-limit') || '50' });
    if (append) q.set('offset', next);
    else if (val('m-time')) q.set('timestamp_ms', Date.parse(val('m-time')));
    else if (val('m-offset')) q.set('offset', val('m-offset'));
    const w = await api(`/v1/topics/${enc(val('m-topic'))}/messages?` + q);
    next = w.next_offset;
    render(w.records, val('m-mode'), append);
    document.getElementById('m-range').textContent = `offsets ${w.log_start_offset}–${w.high_watermark}`;
  };
  main.replaceChildren(el('h2', {}, 'Messages'),
    el('form', { class: 'inline', id: 'browse', onsubmit: async e => {
      e.preventDefault();
      try { await load(false); } catch (err) { say(err.message, false); }
    } },
      field('Topic', input('m-topic', { value: topic, required: true })),
      field('Partition', input('m-partition', { type: 'number', min: 0, value: params.get('partition') || 0 })),
      field('Offset (negative: from the end)', input('m-offset', { value: params.get('offset') || '' })),
      field('or time', input('m-time', { placeholder: '2026-01-01T00:00:00Z' })),
      field('Limit', input('m-limit', { type: 'number', min: 1, max: 500, value: 50 })),
      field('Show as', el('select', { id: 'm-mode' }, ['text', 'json', 'hex'].map(m => el('option', { value: m }, m)))),
      el('button', { id: 'm-read' }, 'Read'),
      el('label', {}, 'Follow', el('input', { type: 'checkbox', id: 'm-follow', onchange: e => {
        clearInterval(follow);
        // Polls once a second for at most 10 minutes.
        if (e.target.checked) {
          const until = Date.now() + 600000;
          follow = setInterval(async () => {
            if (Date.now() > until) { clearInterval(follow); e.target.checked = false; return; }
            try { if (next !== null) await load(true); } catch (err) { say(err.message, false); }
          }, 1000);
          timers.push(follow);
        }
      } }))),
    el('p', { id: 'm-range' }),
    el('table', { id: 'records' }, el('thead', {}, el('tr', {}, ['offset', 'time', 'key', 'value', 'headers'].map(h => el('th', {}, h)))), rows));
  if (topic) await load(false);
}

async function produce(params) {
  main.replaceChildren(el('h2', {}, 'Produce a test message'),
    el('form', { id: 'produce', onsubmit: async e => {
      e.preventDefault();
      const headers = {};
      for (const line of val('p-headers').split('\n').filter(Boolean)) {
        const [k, ...v] = line.split(':'); headers[k.trim()] = v.join(':').trim();
      }
      try {
        const r = await api(`/v1/topics/${enc(val('p-topic'))}/messages`, { method: 'POST', body: {
          partition: Number(val('p-partition') || 0), key: val('p-key') || null,
          value: document.getElementById('p-value').value, headers } });
        say(`produced to ${r.topic}[${r.partition}] at offset ${r.offset}`);
      } catch (err) { say(err.message, false); }
    } },
      el('div', { class: 'inline' },
        field('Topic', input('p-topic', { value: params.get('topic') || '', required: true })),
        field('Partition', input('p-partition', { type: 'number', min: 0, value: 0 })),
        field('Key', input('p-key'))),
      field('Value', el('textarea', { id: 'p-value', rows: 6, cols: 60 })),
      field('Headers (name: value, one a line)', el('textarea', { id: 'p-headers', rows: 3, cols: 60 })),
      el('button', { id: 'p-send' }, 'Produce')));
}

async function dlq() {
  const d = await api('/v1/dlq');
  main.replaceChildren(el('h2', {}, 'Dead letters'),
    el('p', {}, 'Dead-letter topics of share groups (weir.share.dlq.topic). Redrive produces the records back to their source topics.'),
    table(['group', 'topic', 'records', '', ''], d.dead_letter_topics.map(t => [t.group, t.topic, t.records,
      el('a', { href: `#/messages?topic=${enc(t.topic)}` }, 'browse'),
      el('button', { onclick: async () => {
        try {
          const p = await api(`/v1/dlq/${enc(t.topic)}/redrive`, { method: 'POST', body: { group: t.group, dry_run: true } });
          if (!confirm(`Redrive ${p.records} record(s) of ${t.topic}?`)) return;
          const r = await api(`/v1/dlq/${enc(t.topic)}/redrive`, { method: 'POST', body: { group: t.group } });
          say(`redrove ${r.records} record(s)`);
        } catch (err) { say(err.message, false); }
      } }, 'Redrive')])));
}

// ---- Routing --------------------------------------------------------------------------------
async function route() {
  timers.forEach(clearInterval); timers = [];
  const [path, query] = (location.hash.slice(1) || '/overview').split('?');
  const params = new URLSearchParams(query || '');
  const [, page, arg] = path.split('/');
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('active', a.getAttribute('href').slice(2) === (page === 'topic' ? 'topics' : page === 'group' || page === 'share-group' ? 'groups' : page));
  }
  const name = arg === undefined ? '' : decodeURIComponent(arg);
  const pages = { overview, topics: () => topics(params), topic: () => topic(name), groups,
    group: () => group(name), 'share-group': () => shareGroup(name),
    messages: () => messages(params), produce: () => produce(params), dlq };
  try {
    await (pages[page] || overview)();
    main.dataset.loaded = location.hash;
  } catch (err) {
    main.replaceChildren(el('p', { class: 'error' }, err.message));
    say(err.message, false);
  }
}

document.getElementById('token').value = token;
document.getElementById('token-save').addEventListener('click', () => {
  token = document.getElementById('token').value.trim();
  sessionStorage.setItem('weir-token', token);
  route();
});
window.addEventListener('hashchange', route);
route();
