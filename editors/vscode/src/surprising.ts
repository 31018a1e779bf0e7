// `lossmap.mostSurprising` answers -> quick-pick entries. Pure, so the wording is tested.

import type { LspRange, SurprisingSpot } from './protocol';

export interface SpotItem {
  label: string;
  description: string;
  detail: string;
  range: LspRange;
}

/** A token or snippet on one line: visible whitespace, bounded length. */
export function showText(s: string, max = 60): string {
  const one = s.replace(/\n/g, '\\n').replace(/\t/g, '\\t');
  const trimmed = one.trim() || one;
  return trimmed.length > max ? `${trimmed.slice(0, max - 1)}…` : trimmed;
}

function bits(x: number | null | undefined): string {
  return typeof x === 'number' && Number.isFinite(x) ? `${x.toFixed(1)} bits` : '? bits';
}

export function spotItems(spots: readonly SurprisingSpot[]): SpotItem[] {
  return spots.map((spot) => {
    const why: string[] = [];
    if (spot.expected !== null && spot.expected !== undefined) {
      const p =
        typeof spot.expectedProbability === 'number'
          ? ` (p=${spot.expectedProbability.toPrecision(2)})`
          : '';
      why.push(`expected \`${showText(spot.expected, 30)}\`${p}`);
    }
    if (typeof spot.twoSided === 'number') {
      why.push(`two-sided ${bits(spot.twoSided)}`);
    }
    if (spot.suggestion) {
      why.push(`the model would write \`${showText(spot.suggestion, 40)}\``);
    }
    return {
      label: `$(flame) line ${spot.line}: \`${showText(spot.token, 30)}\``,
      description: bits(spot.margin),
      detail: [showText(spot.code, 80), ...why].join(' · '),
      range: spot.range,
    };
  });
}
