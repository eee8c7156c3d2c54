// The live dashboard: one self-contained page (no external scripts: the daemon may run on an offline host) that
// polls the same HTTP API as the CLI and draws share usage and task response times per guest.
export function dashboardHtml(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hylics</title>
<style>
 body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
 h1{font-size:20px;margin:0 0 4px} .sub{color:#666;margin-bottom:16px}
 table{border-collapse:collapse;width:100%;background:#fff} th,td{padding:6px 10px;border-bottom:1px solid #eee;text-align:left}
 th{background:#f0f0f0;font-weight:600} .ok{color:#1a7f37} .bad{color:#c62828}
 .bar{height:10px;background:#e5e7eb;border-radius:5px;overflow:hidden;width:160px;display:inline-block;vertical-align:middle}
 .bar>i{display:block;height:100%;background:#3b82f6} svg{background:#fff;border:1px solid #eee}
 .charts{margin-top:16px} .row{display:flex;gap:16px;margin-bottom:8px} .chart h3{font-size:13px;margin:4px 0}
</style></head><body>
<h1>Hylics</h1><div class="sub" id="status">connecting…</div>
<table><thead><tr><th>guest</th><th>driver</th><th>status</th><th>agent</th><th>address</th><th>cpus</th><th>share</th><th>tasks (mean / p95 ms)</th></tr></thead>
<tbody id="guests"></tbody></table>
<div class="charts" id="charts"></div>
<script>
const hist = {};
// a TCP listener wants the API token: given once as /#token=..., kept for this tab only, never sent in a URL
const tokenIn = new URLSearchParams(location.hash.slice(1)).get('token');
if (tokenIn) { sessionStorage.setItem('hylics-token', tokenIn); history.replaceState(null, '', location.pathname); }
const auth = sessionStorage.getItem('hylics-token') ? { authorization: 'Bearer ' + sessionStorage.getItem('hylics-token') } : {};
const esc = (t) => String(t).replace(/[&<>"']/g, (c) => '&#'+c.charCodeAt(0)+';'); // task names come from guests: never trust them
const fmt = (b) => { const u=['B','KiB','MiB','GiB']; let i=0; while (b>=1024&&i<3){b/=1024;i++} return b.toFixed(i?1:0)+' '+u[i]; };
function spark(points, color, max) {
  const w=320,h=80; if (points.length<2) return '<svg width="'+w+'" height="'+h+'"></svg>';
  const m = max || Math.max(...points,1);
  const d = points.map((v,i)=>(i?'L':'M')+(i*(w/(points.length-1))).toFixed(1)+','+(h-4-(v/m)*(h-8)).toFixed(1)).join('');
  return '<svg width="'+w+'" height="'+h+'"><path d="'+d+'" fill="none" stroke="'+color+'" stroke-width="1.5"/></svg>';
}
async function tick() {
  try {
    const get = (p) => fetch(p, { headers: auth }).then(r => { if (!r.ok) throw new Error('HTTP '+r.status+(r.status===401?' (open this page as /#token=<the token in the state dir\'s api-token>)':'')); return r.json(); });
    const [s, gs] = await Promise.all([get('v1/status'), get('v1/guests')]);
    document.getElementById('status').textContent = 'hylicsd '+s.version+' · pid '+s.pid+' · '+s.guestsRunning+'/'+s.guests+' guests running · shares '+fmt(s.shareBytesUsed)+' used of '+fmt(s.shareBytesTotal);
    const rows = [], charts = [];
    for (const g of gs) {
      const h = hist[g.name] ||= { used: [], resp: [] };
      h.used.push(g.share.usedBytes); if (h.used.length>150) h.used.shift();
      const mean = g.tasks.length ? g.tasks.reduce((a,t)=>a+t.meanMs*t.count,0)/Math.max(1,g.tasks.reduce((a,t)=>a+t.count,0)) : 0;
      h.resp.push(mean); if (h.resp.length>150) h.resp.shift();
      const pct = g.share.sizeBytes ? 100*g.share.usedBytes/g.share.sizeBytes : 0;
      rows.push('<tr><td>'+g.name+'</td><td>'+g.driver+'</td><td class="'+(g.status==='running'?'ok':'bad')+'">'+g.status+'</td><td>'+(g.agentConnected?'✓':'✗')+'</td><td>'+g.address+'</td><td>'+g.cpus+'</td><td><span class="bar"><i style="width:'+pct.toFixed(1)+'%"></i></span> '+fmt(g.share.usedBytes)+' / '+fmt(g.share.sizeBytes)+'</td><td>'+g.tasks.map(t=>esc(t.name)+': '+t.meanMs.toFixed(0)+' / '+t.p95Ms.toFixed(0)+' ('+t.count+')').join('<br>')+'</td></tr>');
      // one row per guest; titles carry the current value (the sparklines show the last 5 minutes, 2 s apart)
      charts.push('<div class="row"><div class="chart"><h3>'+g.name+' · share used: '+fmt(g.share.usedBytes)+' of '+fmt(g.share.sizeBytes)+'</h3>'+spark(h.used,'#3b82f6',g.share.sizeBytes)+'</div><div class="chart"><h3>'+g.name+' · mean task response: '+mean.toFixed(0)+' ms</h3>'+spark(h.resp,'#f59e0b')+'</div></div>');
    }
    document.getElementById('guests').innerHTML = rows.join('') || '<tr><td colspan="8">no guests</td></tr>';
    document.getElementById('charts').innerHTML = charts.join('');
  } catch (e) { document.getElementById('status').textContent = 'daemon unreachable: '+e; }
}
tick(); setInterval(tick, 2000);
</script></body></html>`;
}
