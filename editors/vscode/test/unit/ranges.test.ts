import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { DocumentScores, LspRange, TokenScore } from '../../src/protocol';
import { planHeatMap, splitByLine, toUtf16Character } from '../../src/ranges';
import { lines } from './helpers';

function token(range: LspRange, level: number | null, text = 'x'): TokenScore {
  return {
    range,
    text,
    surprise: 12,
    codeSurprise: 12,
    margin: 10,
    probability: 0.001,
    rank: 40,
    entropy: 2,
    level,
    kind: 'code',
  };
}

function r(l1: number, c1: number, l2: number, c2: number): LspRange {
  return { start: { line: l1, character: c1 }, end: { line: l2, character: c2 } };
}

function scores(tokens: TokenScore[], positionEncoding = 'utf-16'): DocumentScores {
  return { uri: 'file:///a.py', version: 3, positionEncoding, displayThreshold: 8, tokens };
}

// Non-ASCII on purpose: an astral emoji (2 UTF-16 units, 4 UTF-8 bytes, 1 code point) and
// an accented letter (1 unit, 2 bytes) before the token that is tinted.
const LINE = 's = "😀" + naïve(ünit)';

describe('toUtf16Character', () => {
  const target = LINE.indexOf('ünit'); // UTF-16 index
  const prefix = LINE.slice(0, target);

  it('passes UTF-16 columns through (what VS Code negotiates)', () => {
    assert.equal(toUtf16Character(LINE, target, 'utf-16'), target);
  });

  it('converts UTF-8 byte columns', () => {
    assert.equal(toUtf16Character(LINE, Buffer.byteLength(prefix, 'utf8'), 'utf-8'), target);
  });

  it('converts UTF-32 code-point columns', () => {
    assert.equal(toUtf16Character(LINE, [...prefix].length, 'utf-32'), target);
  });

  it('clamps past the end of the line and snaps inside a character to its start', () => {
    assert.equal(toUtf16Character('abc', 99, 'utf-16'), 3);
    assert.equal(toUtf16Character('abc', 99, 'utf-8'), 3);
    const emojiAt = LINE.indexOf('😀');
    const bytes = Buffer.byteLength(LINE.slice(0, emojiAt), 'utf8');
    assert.equal(toUtf16Character(LINE, bytes + 2, 'utf-8'), emojiAt);
    assert.equal(toUtf16Character('abc', 0, 'utf-8'), 0);
  });
});

describe('planHeatMap', () => {
  const doc = lines(`import os\n${LINE}\n    return item\n`);

  it('buckets tokens by level and leaves those below the threshold out', () => {
    const plan = planHeatMap(
      scores([
        token(r(0, 0, 0, 6), 0),
        token(r(0, 7, 0, 9), null),
        token(r(2, 4, 2, 10), 1),
        token(r(2, 11, 2, 15), 4),
      ]),
      doc,
    );
    assert.deepEqual(plan, [[r(2, 4, 2, 10)], [], [], [r(2, 11, 2, 15)]]);
  });

  it('keeps UTF-16 ranges on a line with astral characters exact', () => {
    const start = LINE.indexOf('ünit');
    const plan = planHeatMap(scores([token(r(1, start, 1, start + 4), 2)]), doc);
    assert.deepEqual(plan[1], [r(1, start, 1, start + 4)]);
    assert.equal(LINE.slice(plan[1][0].start.character, plan[1][0].end.character), 'ünit');
  });

  it('converts a utf-8 answer to UTF-16 ranges', () => {
    const start = LINE.indexOf('naïve');
    const bytes = Buffer.byteLength(LINE.slice(0, start), 'utf8');
    const plan = planHeatMap(
      scores([token(r(1, bytes, 1, bytes + Buffer.byteLength('naïve')), 3)], 'utf-8'),
      doc,
    );
    assert.deepEqual(plan[2], [r(1, start, 1, start + 'naïve'.length)]);
  });

  it('splits a multi-line token into its non-blank piece on each line', () => {
    const text = lines('x = """\n    first\n\n  second"""');
    assert.deepEqual(planHeatMap(scores([token(r(0, 4, 3, 11), 1)]), text)[0], [
      r(0, 4, 0, 7),
      r(1, 4, 1, 9),
      r(3, 2, 3, 11),
    ]);
  });

  it('drops empty ranges and clamps ranges past the end of a shorter text', () => {
    const plan = planHeatMap(
      scores([token(r(0, 3, 0, 3), 1), token(r(0, 2, 0, 1), 1), token(r(2, 4, 9, 0), 1)]),
      doc,
    );
    assert.deepEqual(plan[0], [r(2, 4, 2, 15)]);
  });
});

describe('splitByLine', () => {
  it('never covers indentation or trailing blanks', () => {
    assert.deepEqual(splitByLine(r(0, 0, 0, 9), lines('  a b    ')), [r(0, 2, 0, 5)]);
  });
});
