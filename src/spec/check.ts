// Everything that can be wrong in a pipeline, found in one pass: schema, names, references, templates.
import type { SpecProblem } from '../errors.js';
import { pipelineSchema } from '../schema/pipeline-schema.js';
import { validateAt } from '../schema/validator.js';
import { outputNames, stepRefKeys, type Catalog, type SpecEnv } from './catalog.js';
import { STEP_LISTS } from './pipeline.js';
import { valueAt, type DocPath, type RawPipeline } from './source.js';
import { cronProblem, timezoneProblem } from './schedule.js';
import { didYouMean } from './suggest.js';
import { hasTemplate, scanTemplate, TEMPLATE_HELPERS } from './templates.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Template roots, and where each may be used. */
const ROOTS = ['env', 'vars', 'secrets', 'pipeline', 'run', 'matrix', 'steps'] as const;
type Root = (typeof ROOTS)[number];
const PIPELINE_KEYS = ['name', 'file', 'sha256'];
const RUN_KEYS = ['id', 'started_at', 'dir', 'status', 'failed_steps', 'error'];

interface StepInfo {
  id: string;
  uses: string;
  path: DocPath;
  matrixKeys: string[];
}

/** Every problem of a parsed pipeline; an empty list means it can be normalized and planned. */
export function checkPipeline(raw: RawPipeline, catalog: Catalog, env: SpecEnv): SpecProblem[] {
  if (raw.syntax.length) return raw.syntax;
  const problems: SpecProblem[] = [];
  const add = (path: DocPath, message: string, atKey = false): void => {
    problems.push({ pos: atKey ? raw.keyPos(path) : raw.pos(path), message });
  };
  if (!isObj(raw.data)) {
    add([], 'a pipeline must be a mapping with version, name and steps.');
    return problems;
  }
  const data = raw.data;
  problems.push(...validateAt(pipelineSchema, data, raw, [], 'the pipeline'));

  if (typeof data.schedule === 'string') {
    const p = cronProblem(data.schedule);
    if (p) add(['schedule'], p);
  }
  if (typeof data.timezone === 'string') {
    const p = timezoneProblem(data.timezone);
    if (p) add(['timezone'], p);
  }
  if (data.timezone !== undefined && data.schedule === undefined)
    add(['timezone'], 'timezone is set but schedule is not; timezone is the time zone of the schedule.', true);

  const steps: StepInfo[] = [];
  for (const list of STEP_LISTS) {
    const items = data[list];
    if (!Array.isArray(items)) continue;
    items.forEach((s, i) => {
      if (!isObj(s) || typeof s.id !== 'string') return;
      const matrix = isObj(s.matrix) ? Object.keys(s.matrix) : [];
      steps.push({ id: s.id, uses: typeof s.uses === 'string' ? s.uses : '', path: [list, i], matrixKeys: matrix });
    });
  }
  const byId = new Map<string, StepInfo>();
  for (const s of steps) {
    if (byId.has(s.id)) add([...s.path, 'id'], `step id "${s.id}" is used twice; step ids must be unique.`);
    else byId.set(s.id, s);
  }
  const ids = [...byId.keys()];
  const vars = isObj(data.vars) ? data.vars : {};
  const secrets = isObj(data.secrets) ? data.secrets : {};
  const databases = isObj(data.databases) ? data.databases : {};

  const checkTemplates = (value: unknown, path: DocPath, roots: readonly Root[], step?: StepInfo): void => {
    if (typeof value === 'string') {
      if (hasTemplate(value)) checkTemplate(value, path, roots, step);
    } else if (Array.isArray(value)) value.forEach((v, i) => checkTemplates(v, [...path, i], roots, step));
    else if (isObj(value)) for (const [k, v] of Object.entries(value)) checkTemplates(v, [...path, k], roots, step);
  };
  const checkTemplate = (text: string, path: DocPath, roots: readonly Root[], step?: StepInfo): void => {
    const scan = scanTemplate(text);
    if (scan.error) return add(path, `invalid template ${JSON.stringify(text)}: ${scan.error}`);
    for (const h of scan.helpers) {
      if (!(h in TEMPLATE_HELPERS)) add(path, `unknown template helper "${h}".${didYouMean(h, Object.keys(TEMPLATE_HELPERS))}`);
    }
    for (const ref of scan.refs) {
      const [root, ...rest] = ref.parts as [string, ...string[]];
      const where = `template "{{ ${ref.original} }}"`;
      if (!(ROOTS as readonly string[]).includes(root)) {
        add(path, `${where} refers to unknown "${root}".${didYouMean(root, roots)}`);
        continue;
      }
      if (!roots.includes(root as Root)) {
        add(path, `${where}: "${root}" cannot be used here (allowed: ${roots.join(', ')}).`);
        continue;
      }
      const first = rest[0];
      if (first === undefined) {
        add(path, `${where} needs a name after "${root}.", e.g. "${root}.${root === 'env' ? 'HOME' : 'name'}".`);
        continue;
      }
      switch (root as Root) {
        case 'env':
          if (env.vars[first] === undefined) add(path, `${where}: environment variable "${first}" is not set.`);
          break;
        case 'vars':
          if (!hasPath(vars, rest)) add(path, `${where}: no variable "${rest.join('.')}" in vars.${didYouMean(first, Object.keys(vars))}`);
          break;
        case 'secrets':
          if (!(first in secrets)) add(path, `${where}: no secret "${first}" in secrets.${didYouMean(first, Object.keys(secrets))}`);
          break;
        case 'pipeline':
          if (!PIPELINE_KEYS.includes(first)) add(path, `${where}: pipeline has no "${first}".${didYouMean(first, PIPELINE_KEYS)}`);
          break;
        case 'run':
          if (!RUN_KEYS.includes(first)) add(path, `${where}: run has no "${first}".${didYouMean(first, RUN_KEYS)}`);
          break;
        case 'matrix':
          if (!step?.matrixKeys.includes(first)) {
            add(path, `${where}: step "${step?.id ?? '?'}" has no matrix key "${first}".${didYouMean(first, step?.matrixKeys ?? [])}`);
          }
          break;
        case 'steps': {
          const target = byId.get(first);
          if (!target) {
            add(path, `${where}: no step "${first}".${didYouMean(first, ids)}`);
            break;
          }
          if (rest[1] !== 'outputs' || rest[2] === undefined) {
            add(path, `${where}: use "steps.${first}.outputs.<name>".`);
            break;
          }
          const def = catalog.steps.get(target.uses);
          const names = def ? outputNames(def) : 'any';
          if (names !== 'any' && !names.includes(rest[2])) {
            add(path, `${where}: step "${first}" (${target.uses}) has no output "${rest[2]}".${didYouMean(rest[2], names)}`);
          }
          break;
        }
      }
    }
  };

  for (const [name, value] of Object.entries(vars)) checkTemplates(value, ['vars', name], ['env', 'pipeline', 'run']);
  for (const [name, src] of Object.entries(secrets)) {
    if (!isObj(src)) continue;
    if (typeof src.env === 'string' && env.vars[src.env] === undefined) {
      add(['secrets', name, 'env'], `secret "${name}" reads environment variable "${src.env}", which is not set.`);
    } else if (typeof src.env === 'string' && env.vars[src.env] === '' && !env.offline) {
      add(
        ['secrets', name, 'env'],
        `secret "${name}" reads environment variable "${src.env}", which is empty; set it to the secret's value.`,
      );
    }
    const file = typeof src.file === 'string' ? env.secretFile(src.file) : undefined;
    if (file === 'unreadable') add(['secrets', name, 'file'], `secret "${name}" reads file "${String(src.file)}", which cannot be read.`);
    if (file === 'empty')
      add(
        ['secrets', name, 'file'],
        `secret "${name}" reads file "${String(src.file)}", which is empty; write the secret's value into it.`,
      );
  }
  for (const [name, db] of Object.entries(databases)) {
    if (!isObj(db)) continue;
    checkTemplates(db.url, ['databases', name, 'url'], ['env', 'vars', 'secrets', 'pipeline']);
    checkTemplates(db.password, ['databases', name, 'password'], ['env', 'vars', 'secrets', 'pipeline']);
    checkTemplates(db.options, ['databases', name, 'options'], ['env', 'vars', 'secrets', 'pipeline']);
    if (typeof db.driver !== 'string') continue;
    const driver = catalog.drivers.get(db.driver);
    if (!driver) {
      add(['databases', name, 'driver'], `unknown database driver "${db.driver}".${didYouMean(db.driver, catalog.drivers.keys())}`);
    } else {
      if (db.options !== undefined) {
        problems.push(...validateAt(driver.options, db.options, raw, ['databases', name, 'options'], `options of database "${name}"`));
      }
      const urlProblem = typeof db.url === 'string' && !hasTemplate(db.url) ? driver.checkUrl?.(db.url) : undefined;
      if (urlProblem) add(['databases', name, 'url'], `database "${name}": ${urlProblem}`);
      if (Array.isArray(db.assert) && db.assert.length && !driver.query)
        add(
          ['databases', name, 'assert'],
          `database "${name}": driver "${db.driver}" cannot run data assertions (drivers that can: ${
            [...catalog.drivers]
              .filter(([, d]) => d.query)
              .map(([n]) => n)
              .join(', ') || 'none'
          }).`,
        );
    }
    // One read-only statement each: it runs inside the snapshot's read-only transaction and on the restored copy.
    if (Array.isArray(db.assert))
      db.assert.forEach((a, i) => {
        const query = isObj(a) ? a.query : undefined;
        if (typeof query !== 'string') return;
        const at: DocPath = ['databases', name, 'assert', i, 'query'];
        if (hasTemplate(query)) add(at, `database "${name}": an assertion's query is run as written; it takes no template.`);
        else if (/;\s*\S/.test(query))
          add(at, `database "${name}": an assertion's query must be one statement; this one holds several (separated by ";").`);
        else if (!/^\s*(select|with|values|table)\b/i.test(query))
          add(
            at,
            `database "${name}": an assertion's query must be one read-only statement (SELECT, WITH, VALUES or TABLE), not "${query.trim().split(/\s+/)[0]}…".`,
          );
      });
  }

  const plugins = data.plugins;
  if (Array.isArray(plugins)) checkTemplates(plugins, ['plugins'], []);

  const storage = isObj(data.storage) ? data.storage : {};
  checkTemplates(storage, ['storage'], []);
  for (const [scheme, config] of Object.entries(storage)) {
    const store = catalog.storages.get(scheme);
    if (!store) add(['storage', scheme], `no storage serves "${scheme}:" URLs.${didYouMean(scheme, catalog.storages.keys())}`, true);
    else if (!store.configSchema) add(['storage', scheme], `storage "${scheme}:" has no settings.`, true);
    else problems.push(...validateAt(store.configSchema, config, raw, ['storage', scheme], `settings of storage "${scheme}:"`));
  }

  const archive = isObj(data.archive) ? data.archive : {};
  for (const [name, entry] of Object.entries(archive)) {
    if (!isObj(entry)) continue;
    const at: DocPath = ['archive', name];
    checkTemplates(entry, at, ['env', 'vars', 'secrets', 'pipeline']);
    const db = databases[name];
    if (!isObj(db)) {
      add(
        at,
        `archive: unknown database "${name}"; archive entries are named after a "databases:" entry.${didYouMean(name, Object.keys(databases))}`,
        true,
      );
    } else if (typeof db.driver === 'string' && catalog.drivers.has(db.driver) && !catalog.drivers.get(db.driver)!.logArchive) {
      const able = [...catalog.drivers].filter(([, d]) => d.logArchive).map(([n]) => n);
      add(
        at,
        `archive: database "${name}" uses driver "${db.driver}", which cannot archive its log continuously (drivers that can: ${able.join(', ') || 'none'}).`,
        true,
      );
    }
    for (const uses of ['compress', 'encrypt'] as const) {
      const withValue = entry[uses];
      const def = catalog.steps.get(uses);
      if (!isObj(withValue) || !def) continue;
      const checked = Object.fromEntries(Object.entries(withValue).filter(([, v]) => !(typeof v === 'string' && hasTemplate(v))));
      const placeholders = Object.keys(withValue)
        .filter((k) => !(k in checked))
        .map((k) => [k, placeholderFor(def.with, k)]);
      problems.push(
        ...validateAt(def.with, { ...checked, ...Object.fromEntries(placeholders) }, raw, [...at, uses], `"archive.${name}.${uses}"`),
      );
    }
  }

  const marks = isObj(data.marks) ? data.marks : undefined;
  if (marks) {
    checkTemplates(marks, ['marks'], ['env', 'vars', 'pipeline']);
    const listed = Array.isArray(marks.databases) ? marks.databases : [];
    listed.forEach((name, i) => {
      if (typeof name !== 'string') return;
      const at: DocPath = ['marks', 'databases', i];
      const db = databases[name];
      if (!isObj(db)) {
        add(at, `marks: unknown database "${name}"; name a "databases:" entry.${didYouMean(name, Object.keys(databases))}`, true);
        return;
      }
      const driver = typeof db.driver === 'string' ? catalog.drivers.get(db.driver) : undefined;
      if (driver && !driver.markParticipant) {
        const able = [...catalog.drivers].filter(([, d]) => d.markParticipant).map(([n]) => n);
        add(
          at,
          `marks: database "${name}" uses driver "${String(db.driver)}", which cannot record a mark in its log (drivers that can: ${able.join(', ') || 'none'}).`,
          true,
        );
      } else if (!isObj(archive[name]))
        add(
          at,
          `marks: database "${name}" has no "archive:" entry; a mark is a point in its archived log, so archive it too (archive: { ${name}: { to: … } }).`,
          true,
        );
    });
  }

  const consumers = new Map<string, string[]>();
  for (const s of steps) {
    const raw0 = valueAt(data, s.path) as Obj;
    const def = catalog.steps.get(s.uses);
    if (s.uses && !def) {
      add([...s.path, 'uses'], `unknown step type "${s.uses}".${didYouMean(s.uses, catalog.steps.keys())}`);
    }
    const refStep = (target: unknown, path: DocPath, what: string): void => {
      if (typeof target !== 'string') return;
      if (target === s.id) add(path, `step "${s.id}" ${what} itself.`);
      else if (!byId.has(target)) add(path, `step "${s.id}" ${what} unknown step "${target}".${didYouMean(target, ids)}`);
    };
    const needs = raw0.needs;
    if (typeof needs === 'string') refStep(needs, [...s.path, 'needs'], 'needs');
    else if (Array.isArray(needs)) needs.forEach((n, i) => refStep(n, [...s.path, 'needs', i], 'needs'));
    if (isObj(raw0.matrix)) {
      for (const [k, v] of Object.entries(raw0.matrix)) checkTemplates(v, [...s.path, 'matrix', k], ['env', 'vars', 'pipeline']);
    }
    checkTemplates(raw0.with, [...s.path, 'with'], ROOTS, s);
    if (!def) {
      // A step of an unknown type still reads what its `input:` names: no "no step reads" noise.
      if (typeof raw0.input === 'string') {
        refStep(raw0.input, [...s.path, 'input'], 'reads input from');
        consumers.set(raw0.input, [...(consumers.get(raw0.input) ?? []), s.id]);
      }
      continue;
    }

    // Stream wiring: which kinds read and which produce a byte stream.
    const input = raw0.input;
    const reads = def.kind === 'transform' || def.kind === 'sink';
    if (typeof input === 'string') {
      refStep(input, [...s.path, 'input'], 'reads input from');
      const from = byId.get(input);
      const fromDef = from && catalog.steps.get(from.uses);
      if (!reads) {
        add([...s.path, 'input'], `step "${s.id}" (${s.uses}) is a ${def.kind} step and reads no input; remove "input".`, true);
      } else if (fromDef && (fromDef.kind === 'task' || fromDef.kind === 'sink')) {
        add([...s.path, 'input'], `step "${s.id}" reads input from "${input}", but "${input}" (${fromDef.uses}) produces no stream.`);
      } else if (from) {
        consumers.set(input, [...(consumers.get(input) ?? []), s.id]);
      }
    } else if (reads) {
      add(s.path, `step "${s.id}" (${s.uses}) is a ${def.kind} step and needs "input: <step id>".`);
    }

    // `with`: the plugin's schema, and references to other steps.
    const withValue = raw0.with ?? {};
    if (isObj(withValue)) {
      const checked = Object.fromEntries(Object.entries(withValue).filter(([, v]) => !(typeof v === 'string' && hasTemplate(v))));
      const templated = new Set(Object.keys(withValue).filter((k) => !(k in checked)));
      const withProblems = validateAt(
        def.with,
        { ...checked, ...Object.fromEntries([...templated].map((k) => [k, placeholderFor(def.with, k)])) },
        raw,
        [...s.path, 'with'],
        `"with" of step "${s.id}"`,
      );
      problems.push(...withProblems);
      for (const { key, many } of stepRefKeys(def.with)) {
        const v = withValue[key];
        if (many && Array.isArray(v)) v.forEach((t, i) => refStep(t, [...s.path, 'with', key, i], `refers in "with.${key}" to`));
        else if (!many) refStep(v, [...s.path, 'with', key], `refers in "with.${key}" to`);
      }
      const dbKey = (def.with.properties as Obj | undefined)?.database;
      if (
        isObj(dbKey) &&
        typeof withValue.database === 'string' &&
        !hasTemplate(withValue.database) &&
        !(withValue.database in databases)
      ) {
        add(
          [...s.path, 'with', 'database'],
          `step "${s.id}": unknown database "${withValue.database}".${didYouMean(withValue.database, Object.keys(databases))}`,
        );
      }
      const dbList = withValue.databases;
      if (Array.isArray(dbList)) {
        dbList.forEach((d, i) => {
          if (typeof d === 'string' && !hasTemplate(d) && !(d in databases)) {
            add([...s.path, 'with', 'databases', i], `step "${s.id}": unknown database "${d}".${didYouMean(d, Object.keys(databases))}`);
          }
        });
      }
    }
  }
  for (const s of steps) {
    const def = catalog.steps.get(s.uses);
    if (!def || (def.kind !== 'source' && def.kind !== 'transform')) continue;
    const readers = consumers.get(s.id) ?? [];
    if (readers.length === 0) {
      add(s.path, `step "${s.id}" (${s.uses}) produces a stream that no step reads; add a step with "input: ${s.id}".`);
    } else if (readers.length > 1) {
      add(s.path, `step "${s.id}" is read by ${readers.map((r) => `"${r}"`).join(' and ')}; a stream has exactly one reader.`);
    }
  }
  return problems;
}

function hasPath(root: Obj, parts: readonly string[]): boolean {
  let node: unknown = root;
  for (const p of parts) {
    if (!isObj(node) || !(p in node)) return false;
    node = node[p];
  }
  return true;
}

// A templated value is checked when rendered; for the static check stand in a value of the right type.
function placeholderFor(schema: Obj, key: string): unknown {
  const prop = ((schema.properties ?? {}) as Obj)[key];
  if (!isObj(prop)) return 'template';
  if (Array.isArray(prop.enum)) return prop.enum[0];
  const type = Array.isArray(prop.type) ? (prop.type[0] as string) : (prop.type as string | undefined);
  switch (type) {
    case 'integer':
    case 'number':
      return typeof prop.minimum === 'number' ? prop.minimum : 1;
    case 'boolean':
      return true;
    case 'array':
      return [];
    case 'object':
      return {};
    default:
      return prop.format === 'step-id' ? 'step' : prop.format === 'url' ? 'template://value' : 'template';
  }
}
