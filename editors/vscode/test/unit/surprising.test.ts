import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { type SurprisingSpot, visibleRangesParams } from '../../src/protocol';
import { showText, spotItems } from '../../src/surprising';

const SPOT: SurprisingSpot = {
  version: 1,
  line: 16,
  range: { start: { line: 15, character: 11 }, end: { line: 15, character: 15 } },
  margin: 11.34,
  twoSided: 9.8,
  suggestion: 'best',
  token: ' item',
  surprise: 11.3,
  expected: ' best',
  expectedProbability: 0.9912,
  code: 'return item',
};

describe('spotItems', () => {
  it('labels each spot with its line, token, margin and what the model expected', () => {
    const [item] = spotItems([SPOT]);
    assert.equal(item.label, '$(flame) line 16: `item`');
    assert.equal(item.description, '11.3 bits');
    assert.equal(
      item.detail,
      'return item · expected `best` (p=0.99) · two-sided 9.8 bits · the model would write `best`',
    );
    assert.deepEqual(item.range, SPOT.range);
  });

  it('copes with causal-only spots and missing numbers', () => {
    const [item] = spotItems([
      {
        ...SPOT,
        twoSided: null,
        suggestion: null,
        expected: null,
        expectedProbability: null,
        margin: null,
      },
    ]);
    assert.equal(item.description, '? bits');
    assert.equal(item.detail, 'return item');
  });
});

describe('showText', () => {
  it('makes whitespace visible and bounds the length', () => {
    assert.equal(showText('\n'), '\\n');
    assert.equal(showText('  x\t'), 'x\\t');
    assert.equal(showText('a'.repeat(100), 10), `${'a'.repeat(9)}…`);
  });
});

describe('visibleRangesParams', () => {
  it('sends the visible line spans as LSP ranges of whole lines', () => {
    assert.deepEqual(visibleRangesParams('file:///a.py', [{ first: 10, last: 52 }]), {
      textDocument: { uri: 'file:///a.py' },
      ranges: [{ start: { line: 10, character: 0 }, end: { line: 52, character: 0 } }],
    });
  });
});
