// Shapes of lossmap's custom LSP messages: the mirror of lossmap/server/protocol.py (the same
// names and JSON fields); a change to one is a change to the other.
// Kept free of `vscode` imports so that the unit tests can load every module that uses them.

export const DOCUMENT_SCORES = 'lossmap/documentScores';
export const SCORES_READY = 'lossmap/scoresReady';
export const TWO_SIDED_READY = 'lossmap/twoSidedReady';
/** The model server could not be reached; the last scores stay, stale (the server also
 * shows a message, and tries again). */
export const SCORES_STALE = 'lossmap/scoresStale';
/** Client -> server: the lines of a document the user sees. */
export const VISIBLE_RANGES = 'lossmap/visibleRanges';
/** Server-side commands (workspace/executeCommand). vscode-languageclient registers these ids
 * with VS Code itself, so the extension's own commands must use other ids. */
export const SERVER_RESCORE = 'lossmap.rescore';
export const SERVER_MOST_SURPRISING = 'lossmap.mostSurprising';

export interface LspPosition {
  line: number;
  character: number;
}

export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

/** One non-whitespace token of `lossmap/documentScores`. */
export interface TokenScore {
  range: LspRange;
  text: string;
  surprise: number;
  codeSurprise: number | null;
  margin: number | null;
  probability: number;
  /** null: past a model server's top-k. */
  rank: number | null;
  entropy: number;
  /** 0 (or null) below the display threshold, then 1..4 (surpriseLow .. surpriseSevere). */
  level: number | null;
  kind: string;
}

export interface DocumentScores {
  uri: string;
  version: number;
  /** 'utf-16' for VS Code; the ranges are in this encoding. */
  positionEncoding: string;
  displayThreshold: number;
  tokens: TokenScore[];
  /** More tokens than one answer holds (3,000): these are the first; ask by `range` for more. */
  truncated?: boolean;
}

export interface ScoresStale {
  uri: string;
  /** The version the kept scores are for; null when there are none yet. */
  version: number | null;
  reason: string;
}

export interface ScoresReady {
  uri: string;
  version: number;
  seconds: number;
  /** A local-first result around an edit; the full one follows for the same version. */
  partial?: boolean;
  freshUntil?: LspPosition | null;
}

export interface TwoSidedReady {
  uri: string;
  version: number;
  lines: number[];
}

/** `lossmap/visibleRanges`: only the lines of the ranges are read. */
export interface VisibleRanges {
  textDocument: { uri: string };
  ranges: LspRange[];
}

/** The notification for one document's visible line spans (0-based, inclusive). */
export function visibleRangesParams(
  uri: string,
  lines: { first: number; last: number }[],
): VisibleRanges {
  return {
    textDocument: { uri },
    ranges: lines.map(({ first, last }) => ({
      start: { line: first, character: 0 },
      end: { line: last, character: 0 },
    })),
  };
}

/** One entry of `lossmap.mostSurprising`. `line` is 1-based; `range` is the worst token's. */
export interface SurprisingSpot {
  /** The document version the range belongs to (the current text when it was asked for). */
  version: number;
  line: number;
  range: LspRange;
  margin: number | null;
  twoSided: number | null;
  /** The judge whose two-sided verdict `twoSided` is (null: none). */
  judge?: string | null;
  suggestion: string | null;
  token: string;
  surprise: number | null;
  expected: string | null;
  expectedProbability: number | null;
  code: string;
}
