// The dashboard's pages: Handlebars templates (compiled once), one layout, no build step.
import Handlebars from 'handlebars';

const hb = Handlebars.create();
hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);

const LAYOUT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} · dbflow</title>
<style>
:root{--fg:#111;--bg:#fff;--muted:#4a4a4a;--line:#c8c8c8;--ok:#0a6b2d;--bad:#a3141b;--warn:#7a4b00;--run:#0b4f9c;--skip:#555}
*{box-sizing:border-box}body{margin:0;font:16px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
a{color:#0645ad}a:focus,button:focus,input:focus,select:focus,summary:focus{outline:3px solid #1a73e8;outline-offset:2px}
header{background:#14213d;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:1rem;align-items:center}
header a{color:#fff;font-weight:600}nav ul{list-style:none;display:flex;gap:1rem;margin:0;padding:0;flex-wrap:wrap}
.skip{position:absolute;left:-9999px}.skip:focus{left:1rem;top:1rem;background:#fff;color:#000;padding:.5rem}
main{padding:1rem;max-width:75rem;margin:auto}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:.4rem .5rem;text-align:left;vertical-align:top}
.scroll{overflow-x:auto}.state{font-weight:700;padding:.1rem .4rem;border-radius:.3rem;border:2px solid currentColor;white-space:nowrap}
.s-ok,.s-success,.s-fresh,.s-verified{color:var(--ok)}.s-stale,.s-failed,.s-killed,.s-damaged,.s-never,.s-invalid{color:var(--bad)}
.s-running{color:var(--run)}.s-pending,.s-skipped,.s-cancelled,.s-no_rpo,.s-unverified{color:var(--skip)}
.dag{display:flex;gap:1rem;flex-wrap:wrap;align-items:flex-start}.col{display:flex;flex-direction:column;gap:.5rem}
.step{border:2px solid currentColor;border-radius:.4rem;padding:.4rem .6rem;min-width:9rem;background:#fff}
.step small{display:block;color:var(--muted)}pre{background:#f4f4f4;padding:.6rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
form.inline{display:inline}button{font:inherit;padding:.3rem .8rem;border:2px solid #14213d;background:#14213d;color:#fff;border-radius:.3rem;cursor:pointer}
label{font-weight:600}input,select{font:inherit;padding:.25rem}.filters{display:flex;flex-wrap:wrap;gap:.75rem;align-items:end}
.filters div{display:flex;flex-direction:column}.warn{border:2px solid var(--bad);padding:.5rem;color:var(--bad)}
@media (max-width:40rem){th,td{padding:.3rem}main{padding:.5rem}
table.cards thead{position:absolute;left:-9999px}table.cards tr{display:block;border-bottom:2px solid var(--line);padding:.4rem 0}
table.cards td,table.cards tbody th{display:block;border:0;padding:.15rem .3rem}table.cards td[data-label]::before{content:attr(data-label) ": ";font-weight:600}}
</style></head><body>
<a class="skip" href="#main">Skip to content</a>
<header><strong>dbflow</strong><nav aria-label="Main"><ul>
<li><a href="/"{{#if (eq nav "overview")}} aria-current="page"{{/if}}>Overview</a></li>
<li><a href="/runs"{{#if (eq nav "runs")}} aria-current="page"{{/if}}>Runs</a></li>
<li><a href="/backups"{{#if (eq nav "backups")}} aria-current="page"{{/if}}>Backups</a></li>
<li>{{#if signedIn}}<form class="inline" method="post" action="/logout"><input type="hidden" name="_csrf" value="{{csrf}}"><button>Sign out</button></form>{{else}}<a href="/login">Sign in</a>{{/if}}</li>
</ul></nav></header>
<main id="main"><h1>{{title}}</h1>{{#if notice}}<p role="status" class="warn">{{notice}}</p>{{/if}}{{{body}}}</main></body></html>`;

const OVERVIEW = `<p>Freshness of each pipeline's newest <em>verified</em> backup against its <code>rpo:</code>; problems first. As of {{now}}.</p>
<div class="scroll"><table class="cards"><caption class="skip">Pipelines</caption><thead><tr><th scope="col">Pipeline</th><th scope="col">Freshness</th><th scope="col">Newest verified</th><th scope="col">Age / RPO</th><th scope="col">Schedule</th><th scope="col">Next due</th><th scope="col">Last run</th><th scope="col">Archive lag</th>{{#if actions}}<th scope="col">Action</th>{{/if}}</tr></thead><tbody>
{{#each pipelines}}<tr data-pipeline="{{name}}"><th scope="row">{{#if name}}<a href="/runs?pipeline={{name}}">{{name}}</a>{{else}}{{file}}{{/if}}{{#if error}}<br><small>{{error}}</small>{{/if}}</th>
<td data-label="Freshness"><span class="state s-{{state}}">{{stateLabel}}</span></td><td data-label="Newest verified">{{#if lastVerifiedRun}}<a href="/runs/{{lastVerifiedRun}}">{{lastVerified}}</a>{{else}}never{{/if}}</td><td data-label="Age / RPO">{{age}} / {{rpo}}</td>
<td data-label="Schedule">{{schedule}}</td><td data-label="Next due">{{nextDue}}</td><td data-label="Last run">{{#if lastRun}}<a href="/runs/{{lastRun.runId}}">{{lastRun.when}}</a> <span class="state s-{{lastRun.status}}">{{lastRun.status}}</span>{{else}}-{{/if}}</td>
<td data-label="Archive lag">{{#each archive}}<div>{{database}}: {{lag}} <span class="state s-{{state}}">{{state}}</span></div>{{else}}-{{/each}}</td>
{{#if ../actions}}<td data-label="Action">{{#if name}}<form class="inline" method="post" action="/actions/run"><input type="hidden" name="_csrf" value="{{../csrf}}"><input type="hidden" name="pipeline" value="{{name}}"><button aria-label="Run {{name}} now">Run now</button></form>{{/if}}</td>{{/if}}</tr>
{{/each}}</tbody></table></div>`;

const RUNS = `<form class="filters" method="get" action="/runs" aria-label="Filter runs">
<div><label for="f-pipeline">Pipeline</label><select id="f-pipeline" name="pipeline"><option value="">any</option>{{#each pipelineNames}}<option{{#if (eq this ../filter.pipeline)}} selected{{/if}}>{{this}}</option>{{/each}}</select></div>
<div><label for="f-status">Status</label><select id="f-status" name="status"><option value="">any</option>{{#each statuses}}<option{{#if (eq this ../filter.status)}} selected{{/if}}>{{this}}</option>{{/each}}</select></div>
<div><label for="f-since">Started after</label><input id="f-since" type="date" name="since" value="{{filter.since}}"></div>
<div><label for="f-until">Started before</label><input id="f-until" type="date" name="until" value="{{filter.until}}"></div>
<div><button>Filter</button></div></form>
<p>{{total}} runs{{#if more}}; showing {{from}}–{{to}}{{/if}}.</p>
<div class="scroll"><table><thead><tr><th scope="col">Run</th><th scope="col">Pipeline</th><th scope="col">Status</th><th scope="col">Started</th><th scope="col">Duration</th></tr></thead><tbody>
{{#each runs}}<tr><td><a href="/runs/{{runId}}">{{runId}}</a></td><td>{{pipeline}}</td><td><span class="state s-{{status}}">{{status}}</span></td><td>{{started}}</td><td>{{duration}}</td></tr>{{/each}}
</tbody></table></div>{{#if next}}<p><a href="{{next}}">Older runs</a></p>{{/if}}`;

const RUN = `<p>Pipeline <a href="/runs?pipeline={{pipeline}}">{{pipeline}}</a> · started {{started}} · status <span id="run-status" class="state s-{{status}}" aria-live="polite">{{status}}</span> <span id="run-duration">{{duration}}</span></p>
<h2>Steps</h2><div class="dag" id="dag" aria-label="Steps by stage, in the order they can run">{{#each columns}}<div class="col">{{#each this}}
<div class="step s-{{status}}" id="step-{{domId}}" data-step="{{key}}" data-status="{{status}}"><strong>{{key}}</strong><small>{{uses}}{{#if after}} · after {{after}}{{/if}}</small>
<small class="st">{{status}}</small><small class="bytes">{{bytes}}{{#if rate}} · {{rate}}{{/if}}{{#if duration}} · {{duration}}{{/if}}</small></div>{{/each}}</div>{{/each}}</div>
{{#if verifications.length}}<h2>Verification</h2><ul id="verifications">{{#each verifications}}<li><span class="state s-{{#if ok}}ok{{else}}failed{{/if}}">{{#if ok}}verified{{else}}FAILED{{/if}}</span> {{database}} {{check}}: {{detail}}</li>{{/each}}</ul>{{/if}}
{{#if error}}<p class="warn">{{error}}</p>{{/if}}
{{#if restore.length}}<h2>Restore without dbflow</h2><pre>{{#each restore}}{{this}}
{{/each}}</pre>{{/if}}
<h2>Step logs</h2>{{#each logs}}<details><summary>{{key}} ({{lines}} lines)</summary><pre>{{text}}</pre></details>{{else}}<p>No step wrote a log.</p>{{/each}}
{{#if manifest}}<h2>Manifest</h2><p><a href="/backups?repo={{repo}}">{{manifestUrl}}</a></p><details><summary>manifest.json</summary><pre>{{manifest}}</pre></details>{{/if}}
{{#if live}}<script>
(function(){var es=new EventSource('/runs/{{runId}}/events');es.addEventListener('state',function(m){var d=JSON.parse(m.data);
Object.keys(d.steps).forEach(function(k){var s=d.steps[k],el=document.querySelector('[data-step="'+k.replace(/"/g,'')+'"]');if(!el)return;
el.className='step s-'+s.status;el.dataset.status=s.status;el.querySelector('.st').textContent=s.status;el.querySelector('.bytes').textContent=s.text;});
var st=document.getElementById('run-status');st.textContent=d.status;st.className='state s-'+d.status;
if(d.done){es.close();if(d.verified){st.textContent=d.status+' · verified';}}});})();
</script>{{/if}}`;

const BACKUPS = `{{#if repos.length}}<form class="filters" method="get" action="/backups"><div><label for="repo">Repository</label><select id="repo" name="repo">{{#each repos}}<option{{#if (eq this ../repo)}} selected{{/if}}>{{this}}</option>{{/each}}</select></div><div><button>Show</button></div></form>{{else}}<p>No run has published a backup yet.</p>{{/if}}
{{#if error}}<p class="warn">{{error}}</p>{{/if}}
{{#if backups}}<p>{{backups.length}} backups in {{repo}}, newest first.</p><div class="scroll"><table><thead><tr><th scope="col">Time</th><th scope="col">Pipeline · run</th><th scope="col">Size</th><th scope="col">Databases</th><th scope="col">Status</th><th scope="col">Last verify</th><th scope="col">Restores to</th><th scope="col">Actions</th></tr></thead><tbody>
{{#each backups}}<tr><td>{{time}}</td><td>{{pipeline}} · {{#if runId}}<a href="/runs/{{runId}}">{{runId}}</a>{{/if}}</td><td>{{size}}</td><td>{{databases}}</td><td><span class="state s-{{status}}">{{status}}</span></td><td>{{verify}}</td><td>{{restoresTo}}</td>
<td><form class="inline" method="get" action="/backups/restore"><input type="hidden" name="backup" value="{{url}}"><label class="skip" for="db-{{@index}}">Database</label><select id="db-{{@index}}" name="database">{{#each dbList}}<option>{{this}}</option>{{/each}}</select> <button>Restore…</button></form>
{{#if ../actions}}<form class="inline" method="post" action="/actions/verify"><input type="hidden" name="_csrf" value="{{../csrf}}"><input type="hidden" name="backup" value="{{url}}"><button aria-label="Verify {{runId}} now">Verify now</button></form>{{/if}}</td></tr>{{/each}}
</tbody></table></div>{{/if}}`;

const RESTORE = `<p>Backup <code>{{backup}}</code>, database <strong>{{database}}</strong>.</p>
<h2>With dbflow</h2><pre>{{dbflow}}</pre><p>The target must exist and be empty (or add <code>--create</code>); row counts are compared with the backup's after the restore.</p>
<h2>Without dbflow</h2><pre>{{#each stock}}{{this}}
{{/each}}</pre><p>Check what you downloaded first: <code>sha256sum</code> of each artifact must print the sha256 in the manifest.</p>`;

const LOGIN = `<form method="post" action="/login"><p><label for="token">Access token</label><br><input id="token" name="token" type="password" autocomplete="current-password" required></p><input type="hidden" name="next" value="{{next}}"><p><button>Sign in</button></p></form>`;

const MESSAGE = `<p>{{message}}</p><p><a href="/">Back to the overview</a></p>`;

const layout = hb.compile(LAYOUT);
const pages = {
  overview: hb.compile(OVERVIEW),
  runs: hb.compile(RUNS),
  run: hb.compile(RUN),
  backups: hb.compile(BACKUPS),
  restore: hb.compile(RESTORE),
  login: hb.compile(LOGIN),
  message: hb.compile(MESSAGE),
};

/** The page names. */
export type PageName = keyof typeof pages;

/** What every page gets besides its own data. */
export interface PageFrame {
  title: string;
  nav?: string;
  signedIn: boolean;
  csrf?: string;
  notice?: string;
}

/** A whole HTML page: the layout around the named template. */
export function renderPage(name: PageName, frame: PageFrame, data: Record<string, unknown>): string {
  return layout({ ...frame, body: pages[name]({ ...data, csrf: frame.csrf }) });
}
