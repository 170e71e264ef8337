// The live view of the log (/ui/audit/live): each event as it is written, newest at the top,
// from the live tail (server-sent events), which accepts this page's session cookie. The browser
// reconnects by itself, resuming after the last position it had (Last-Event-ID).
'use strict';
const list = document.getElementById('live-events');
const status = document.getElementById('live-status');
const source = new EventSource('/api/v1/events/live');

function show(message) {
  const event = JSON.parse(message.data);
  const item = document.createElement('li');
  item.dataset.position = String(event.position);
  const line = document.createElement('span');
  line.className = 'live-line';
  const actor = event.metadata && event.metadata.actor ? event.metadata.actor : 'the command line';
  line.textContent = `${event.position} · ${event.type} · ${event.stream} · by ${actor} · ${event.recorded_at}`;
  const folded = document.createElement('details');
  const summary = document.createElement('summary');
  summary.textContent = 'JSON';
  const data = document.createElement('pre');
  data.textContent = JSON.stringify(event.data, null, 2);
  folded.append(summary, data);
  item.append(line, folded);
  list.prepend(item);
}

for (const type of list.dataset.types.split(' ')) {
  source.addEventListener(type, show);
}
source.onopen = () => {
  status.textContent = 'Following the log: new events appear at the top as they are written.';
};
source.onerror = () => {
  status.textContent = 'The connection was lost; reconnecting…';
};
