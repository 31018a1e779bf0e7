// Server token ranges -> heat-map decoration ranges, one list per level.
// VS Code positions are UTF-16 code units, which is what vscode-languageclient negotiates, so
// the ranges normally pass through unchanged; the conversion below keeps the map right should
// a server answer in utf-8 or utf-32 anyway (positionEncoding is part of every answer).

import { levelIndex, LEVELS } from './colors';
import type { DocumentScores, LspPosition, LspRange } from './protocol';

/** The few things the planner needs from a document (a vscode.TextDocument fits). */
export interface LineSource {
  readonly lineCount: number;
  lineText(line: number): string;
}

/** UTF-16 column of `character`, counted in `encoding` units on `lineText`. */
export function toUtf16Character(lineText: string, character: number, encoding: string): number {
  if (character <= 0) {
    return 0;
  }
  const enc = encoding.toLowerCase();
  if (enc === 'utf-16' || enc === 'utf16') {
    return Math.min(character, lineText.length);
  }
  const bytes = enc === 'utf-8' || enc === 'utf8';
  let units = 0; // units of `encoding` consumed so far
  let index = 0; // UTF-16 index reached
  for (const ch of lineText) {
    // `for..of` walks code points, so a surrogate pair is one step of two UTF-16 units.
    const cp = ch.codePointAt(0) ?? 0;
    const width = bytes ? (cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4) : 1;
    if (units + width > character) {
      break; // a position inside a character snaps to its start
    }
    units += width;
    index += ch.length;
    if (units === character) {
      break;
    }
  }
  return index;
}

function convert(pos: LspPosition, doc: LineSource, encoding: string): LspPosition | undefined {
  if (doc.lineCount === 0) {
    return undefined;
  }
  if (pos.line >= doc.lineCount) {
    // Past the end (the text shrank): clamp to the end of the last line.
    const last = doc.lineCount - 1;
    return { line: last, character: doc.lineText(last).length };
  }
  const line = Math.max(0, pos.line);
  return { line, character: toUtf16Character(doc.lineText(line), pos.character, encoding) };
}

/** The non-whitespace part of `range` on each line it covers, so that a multi-line token
 * (a docstring, say) is tinted like the server's semantic tokens: never across line ends or
 * over indentation. */
export function splitByLine(range: LspRange, doc: LineSource): LspRange[] {
  const pieces: LspRange[] = [];
  for (let line = range.start.line; line <= range.end.line; line++) {
    const text = doc.lineText(line);
    const from = line === range.start.line ? range.start.character : 0;
    const to = line === range.end.line ? range.end.character : text.length;
    const segment = text.slice(from, to);
    const lead = segment.length - segment.trimStart().length;
    const trail = segment.length - segment.trimEnd().length;
    const start = from + lead;
    const end = to - trail;
    if (end > start) {
      pieces.push({ start: { line, character: start }, end: { line, character: end } });
    }
  }
  return pieces;
}

/** Decoration ranges per level (index 0 = surpriseLow); tokens below the threshold are left out. */
export function planHeatMap(scores: DocumentScores, doc: LineSource): LspRange[][] {
  const buckets: LspRange[][] = LEVELS.map(() => []);
  const encoding = scores.positionEncoding || 'utf-16';
  for (const token of scores.tokens) {
    const index = levelIndex(token.level);
    if (index === undefined) {
      continue;
    }
    const start = convert(token.range.start, doc, encoding);
    const end = convert(token.range.end, doc, encoding);
    if (!start || !end || end.line < start.line) {
      continue;
    }
    if (end.line === start.line && end.character <= start.character) {
      continue;
    }
    buckets[index].push(...splitByLine({ start, end }, doc));
  }
  return buckets;
}
