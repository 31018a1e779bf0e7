import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { blend, contrast, LEVELS, levelIndex, parseHex, type ThemeKind } from '../../src/colors';
import { packageJson } from './helpers';

// Editor background and foreground of VS Code's default themes (Dark Modern, Light Modern,
// High Contrast, High Contrast Light).
const THEMES: Record<ThemeKind, { bg: string; fg: string }> = {
  dark: { bg: '#1f1f1f', fg: '#cccccc' },
  light: { bg: '#ffffff', fg: '#3b3b3b' },
  highContrast: { bg: '#000000', fg: '#ffffff' },
  highContrastLight: { bg: '#ffffff', fg: '#292929' },
};

describe('levelIndex', () => {
  it('maps the server levels 1..4 to the four styles', () => {
    assert.deepEqual([1, 2, 3, 4].map(levelIndex), [0, 1, 2, 3]);
    assert.deepEqual(
      LEVELS.map((l) => l.tokenType),
      ['surpriseLow', 'surpriseMedium', 'surpriseHigh', 'surpriseSevere'],
    );
  });

  it('leaves tokens below the threshold and unknown levels untinted', () => {
    for (const level of [0, null, undefined, 5, -1, 1.5, Number.NaN]) {
      assert.equal(levelIndex(level), undefined, String(level));
    }
  });
});

describe('heat-map colours', () => {
  for (const [kind, theme] of Object.entries(THEMES) as [ThemeKind, { bg: string; fg: string }][]) {
    const bg = parseHex(theme.bg);
    const fg = parseHex(theme.fg);

    it(`keep text readable on the default ${kind} theme (WCAG AA, 4.5:1)`, () => {
      for (const level of LEVELS) {
        const tinted = blend(parseHex(level.defaults[kind]), bg);
        const ratio = contrast(fg, tinted);
        assert.ok(ratio >= 4.5, `${level.tokenType} on ${kind}: ${ratio.toFixed(2)}`);
      }
    });

    it(`get stronger with the level on the ${kind} theme`, () => {
      const distance = LEVELS.map((level) => {
        const tinted = blend(parseHex(level.defaults[kind]), bg);
        return Math.hypot(tinted.r - bg.r, tinted.g - bg.g, tinted.b - bg.b);
      });
      for (let i = 1; i < distance.length; i++) {
        assert.ok(distance[i] > distance[i - 1], `${kind}: ${distance.map((d) => d.toFixed(0))}`);
      }
      // ...and the lowest level is still visible at all.
      assert.ok(distance[0] > 40, `${kind}: lowest level too faint (${distance[0].toFixed(1)})`);
    });
  }

  it('are the defaults contributed in package.json', () => {
    const contributed = packageJson().contributes.colors as {
      id: string;
      defaults: Record<string, string>;
    }[];
    assert.deepEqual(
      contributed.map((c) => [c.id, c.defaults]),
      LEVELS.map((l) => [l.colorId, l.defaults]),
    );
  });
});

describe('semantic token contributions', () => {
  const contributes = packageJson().contributes;

  it('declare every server token type with a superType, and the prose modifier', () => {
    const types = new Map<string, { superType?: string }>(
      contributes.semanticTokenTypes.map((t: { id: string }) => [t.id, t]),
    );
    for (const level of LEVELS) {
      const t = types.get(level.tokenType);
      assert.ok(t, level.tokenType);
      assert.ok(t.superType && types.has(t.superType), `${level.tokenType} superType`);
    }
    assert.deepEqual(
      contributes.semanticTokenModifiers.map((m: { id: string }) => m.id),
      ['prose'],
    );
  });

  it('give every token type TextMate fallback scopes', () => {
    const scopes = contributes.semanticTokenScopes[0].scopes as Record<string, string[]>;
    for (const level of LEVELS) {
      assert.ok(scopes[level.tokenType]?.length, level.tokenType);
    }
  });
});
