// Retention (grandfather-father-son): which backups a policy keeps, checked against hand-computed dates.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isoWeekKey, retain, type RetentionCandidate, type RetentionPolicy } from '../../src/index.js';

const DAY = 86_400_000;
const NONE: RetentionPolicy = { last: 0, daily: 0, weekly: 0, monthly: 0 };

/** A backup at an ISO time, its id the run id that time would get. */
function backup(iso: string, verified = false, group?: string): RetentionCandidate {
  const time = new Date(iso);
  const id = `${time
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${group ?? 'aaaa'}`;
  return { id, time, verified, ...(group !== undefined && { group }) };
}

/** The ISO times of the kept backups, sorted. */
function keptTimes(backups: RetentionCandidate[], policy: RetentionPolicy): string[] {
  return retain(backups, policy)
    .filter((d) => d.keep)
    .map((d) => d.backup.time.toISOString())
    .sort();
}

describe('retention over 400 daily backups', () => {
  // One backup a day at 02:00 UTC, 2025-02-12 … 2026-03-18 (a Wednesday, in ISO week 2026-W12).
  const first = Date.parse('2025-02-12T02:00:00Z');
  const history = Array.from({ length: 400 }, (_, i) => backup(new Date(first + i * DAY).toISOString(), true));

  it('spans the dates the expectations below are written for', () => {
    assert.equal(history.length, 400);
    assert.equal(history[0]!.time.toISOString(), '2025-02-12T02:00:00.000Z');
    assert.equal(history.at(-1)!.time.toISOString(), '2026-03-18T02:00:00.000Z');
  });

  it('--keep-daily 7 --keep-weekly 4 --keep-monthly 12 keeps exactly the expected 20', () => {
    const expected = [
      // monthly: the last backup of each of the 12 newest months (March 2026 is still running: its newest is the 18th)
      '2025-04-30',
      '2025-05-31',
      '2025-06-30',
      '2025-07-31',
      '2025-08-31',
      '2025-09-30',
      '2025-10-31',
      '2025-11-30',
      '2025-12-31',
      '2026-01-31',
      '2026-02-28',
      // weekly: the Sundays closing ISO weeks 2026-W09, W10 (W11's Sunday, the 15th, is also a daily); W12's newest is the 18th
      '2026-03-01',
      '2026-03-08',
      // daily: the 7 newest days
      '2026-03-12',
      '2026-03-13',
      '2026-03-14',
      '2026-03-15',
      '2026-03-16',
      '2026-03-17',
      '2026-03-18',
    ].map((d) => `${d}T02:00:00.000Z`);
    assert.deepEqual(keptTimes(history, { last: 0, daily: 7, weekly: 4, monthly: 12 }), expected);
  });

  it('says why each backup is kept', () => {
    const decisions = retain(history, { last: 0, daily: 7, weekly: 4, monthly: 12 });
    const reasons = (day: string) => decisions.find((d) => d.backup.time.toISOString().startsWith(day))!.reasons;
    assert.deepEqual(reasons('2026-03-18'), ['daily 2026-03-18', 'weekly 2026-W12', 'monthly 2026-03', 'newest verified']);
    assert.deepEqual(reasons('2026-03-15'), ['daily 2026-03-15', 'weekly 2026-W11']);
    assert.deepEqual(reasons('2026-03-01'), ['weekly 2026-W09']);
    assert.deepEqual(reasons('2026-02-28'), ['monthly 2026-02']);
    assert.deepEqual(reasons('2026-03-11'), [], 'the 8th newest day is not kept');
    assert.deepEqual(reasons('2025-03-31'), [], 'the 13th newest month is not kept');
    assert.equal(decisions.filter((d) => d.keep).length, 20);
    assert.equal(decisions.filter((d) => !d.keep).length, 380);
  });

  it('returns every backup once, newest first', () => {
    const decisions = retain([...history].reverse(), { ...NONE, last: 3 });
    assert.equal(decisions.length, 400);
    assert.equal(decisions[0]!.backup.time.toISOString(), '2026-03-18T02:00:00.000Z');
    assert.deepEqual(
      decisions.slice(0, 4).map((d) => d.reasons),
      [['last 1/3', 'newest verified'], ['last 2/3'], ['last 3/3'], []],
    );
  });
});

describe('retention edge cases', () => {
  it('keeps the newest verified backup even when it is older than everything the policy keeps', () => {
    const backups = [
      backup('2026-01-01T02:00:00Z', true),
      backup('2026-01-02T02:00:00Z', true), // the newest verified one
      ...['03', '04', '05', '06', '07', '08', '09', '10'].map((d) => backup(`2026-01-${d}T02:00:00Z`, false)),
    ];
    const decisions = retain(backups, { ...NONE, last: 3 });
    assert.deepEqual(
      decisions.filter((d) => d.keep).map((d) => [d.backup.time.toISOString().slice(0, 10), d.reasons.join(', ')]),
      [
        ['2026-01-10', 'last 1/3'],
        ['2026-01-09', 'last 2/3'],
        ['2026-01-08', 'last 3/3'],
        ['2026-01-02', 'newest verified'],
      ],
    );
    assert.equal(
      decisions.find((d) => d.backup.time.toISOString().startsWith('2026-01-01'))!.keep,
      false,
      'only the newest verified one is protected',
    );
  });

  it('keeps the newest verified backup when the policy keeps nothing, and nothing when none is verified', () => {
    const backups = [backup('2026-01-01T02:00:00Z', true), backup('2026-01-02T02:00:00Z')];
    assert.deepEqual(keptTimes(backups, NONE), ['2026-01-01T02:00:00.000Z']);
    assert.deepEqual(keptTimes([backup('2026-01-01T02:00:00Z'), backup('2026-01-02T02:00:00Z')], NONE), []);
  });

  it('with several backups a day, keeps the newest of each day (UTC), in any input order', () => {
    const backups = ['2026-05-01', '2026-05-02', '2026-05-03'].flatMap((d) =>
      ['00:00:00', '06:00:00', '12:30:00', '23:59:59'].map((t) => backup(`${d}T${t}Z`)),
    );
    const shuffled = [...backups.filter((_, i) => i % 2), ...backups.filter((_, i) => !(i % 2)).reverse()];
    assert.deepEqual(keptTimes(shuffled, { ...NONE, daily: 2 }), ['2026-05-02T23:59:59.000Z', '2026-05-03T23:59:59.000Z']);
    assert.deepEqual(
      keptTimes(shuffled, { ...NONE, last: 2 }),
      ['2026-05-03T12:30:00.000Z', '2026-05-03T23:59:59.000Z'],
      '--keep-last counts backups, not days',
    );
  });

  it('counts days in UTC: 23:30Z and 00:30Z the next day are two days', () => {
    const backups = [backup('2026-03-17T23:30:00Z'), backup('2026-03-18T00:30:00Z')];
    assert.deepEqual(keptTimes(backups, { ...NONE, daily: 2 }), ['2026-03-17T23:30:00.000Z', '2026-03-18T00:30:00.000Z']);
    assert.deepEqual(keptTimes(backups, { ...NONE, monthly: 5 }), ['2026-03-18T00:30:00.000Z'], 'one month');
  });

  it('counts only days (weeks, months) that have backups', () => {
    // Gaps: the 2 newest days with backups are weeks apart.
    const backups = [backup('2026-01-05T02:00:00Z'), backup('2026-02-20T02:00:00Z'), backup('2026-03-18T02:00:00Z')];
    assert.deepEqual(keptTimes(backups, { ...NONE, daily: 2 }), ['2026-02-20T02:00:00.000Z', '2026-03-18T02:00:00.000Z']);
  });

  it('uses ISO weeks, which cross the new year', () => {
    assert.equal(isoWeekKey(new Date('2021-01-03T12:00:00Z')), '2020-W53');
    assert.equal(isoWeekKey(new Date('2020-12-28T00:00:00Z')), '2020-W53');
    assert.equal(isoWeekKey(new Date('2021-01-04T00:00:00Z')), '2021-W01');
    assert.equal(isoWeekKey(new Date('2024-12-30T00:00:00Z')), '2025-W01');
    assert.equal(isoWeekKey(new Date('2026-01-01T00:00:00Z')), '2026-W01');
    assert.equal(isoWeekKey(new Date('2026-03-18T02:00:00Z')), '2026-W12');
    const backups = [backup('2020-12-28T02:00:00Z'), backup('2021-01-03T02:00:00Z'), backup('2021-01-04T02:00:00Z')];
    assert.deepEqual(keptTimes(backups, { ...NONE, weekly: 2 }), ['2021-01-03T02:00:00.000Z', '2021-01-04T02:00:00.000Z']);
  });

  it('prunes each group (pipeline) on its own', () => {
    const backups = [
      backup('2026-01-01T02:00:00Z', false, 'app'),
      backup('2026-01-02T02:00:00Z', false, 'app'),
      backup('2026-01-01T03:00:00Z', false, 'billing'),
      backup('2026-01-03T03:00:00Z', true, 'billing'),
    ];
    assert.deepEqual(
      retain(backups, { ...NONE, last: 1 })
        .filter((d) => d.keep)
        .map((d) => [d.backup.group, d.backup.time.toISOString().slice(0, 10), d.reasons]),
      [
        ['billing', '2026-01-03', ['last 1/1', 'newest verified']],
        ['app', '2026-01-02', ['last 1/1']],
      ],
    );
  });
});
