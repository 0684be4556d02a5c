'use strict';
// A minimal client of the bidirectional JSON protocol over WebSocket: connect with a
// token whose `channels` claim subscribes server-side, answer pings, report publications.
window.GyreLive = {
  watch({ url, token, channel, onState, onPublication }) {
    const ws = new WebSocket(url);
    let closedByUs = false;
    ws.onopen = () => ws.send(JSON.stringify({ id: 1, connect: { token, name: 'gyre-admin-ui' } }));
    ws.onmessage = (event) => {
      // Several replies may share a frame, one JSON object per line.
      for (const line of String(event.data).split('\n')) {
        if (!line.trim()) continue;
        const msg = JSON.parse(line);
        if (Object.keys(msg).length === 0) { ws.send('{}'); continue; } // ping → pong
        if (msg.id === 1) {
          if (msg.error) { onState('closed', msg.error.message); ws.close(); continue; }
          const subs = (msg.connect && msg.connect.subs) || {};
          onState(channel in subs ? 'subscribed' : 'connected');
          const start = subs[channel] && subs[channel].publications;
          for (const pub of start || []) onPublication(pub);
          continue;
        }
        const push = msg.push;
        if (push && push.channel === channel && push.pub) onPublication(push.pub);
        if (push && push.disconnect) onState('closed', push.disconnect.reason);
      }
    };
    ws.onclose = (event) => { if (!closedByUs) onState('closed', event.reason || 'code ' + event.code); };
    return { close() { closedByUs = true; ws.close(); } };
  },
};
