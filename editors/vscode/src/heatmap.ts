// The background heat map: one decoration type per surprise level, fed by
// `lossmap/documentScores`. Semantic tokens cannot do this (VS Code themes style them by
// foreground and font style only), hence decorations.

import * as vscode from 'vscode';

import { LEVELS } from './colors';
import type { DocumentScores, LspRange } from './protocol';
import { planHeatMap } from './ranges';

/** Asks the server for a document's scores; undefined when no server is running. */
export type ScoresSource = (doc: vscode.TextDocument) => Promise<DocumentScores | null | undefined>;

interface Plan {
  version: number;
  ranges: vscode.Range[][];
}

const RETRY_MS = 200;
const RETRIES = 15;

function toRange(r: LspRange): vscode.Range {
  return new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class HeatMap implements vscode.Disposable {
  private readonly types: vscode.TextEditorDecorationType[];
  private readonly plans = new Map<string, Plan>();
  /** Latest request per document: an older answer arriving late is dropped. */
  private readonly requests = new Map<string, number>();
  private readonly disposables: vscode.Disposable[] = [];
  private source: ScoresSource | undefined;
  private counter = 0;

  constructor(
    private enabled: boolean,
    private readonly log: (message: string) => void,
  ) {
    this.types = LEVELS.map((style) =>
      vscode.window.createTextEditorDecorationType({
        backgroundColor: new vscode.ThemeColor(style.colorId),
        overviewRulerColor: style.ruler ? new vscode.ThemeColor(style.colorId) : undefined,
        overviewRulerLane: vscode.OverviewRulerLane.Right,
        // Typing at a tinted token's edge must not stretch the tint over new text.
        rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
      }),
    );
    this.disposables.push(
      vscode.window.onDidChangeVisibleTextEditors((editors) => {
        for (const editor of editors) {
          this.show(editor);
        }
      }),
      vscode.workspace.onDidCloseTextDocument((doc) => this.forget(doc.uri.toString())),
    );
  }

  get isEnabled(): boolean {
    return this.enabled;
  }

  /** Where scores come from; undefined (server stopped) clears the map. */
  setSource(source: ScoresSource | undefined): void {
    this.source = source;
    if (!source) {
      this.clearAll();
    }
  }

  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    if (!enabled) {
      this.clearAll();
    } else {
      void this.refreshVisible();
    }
  }

  /** New scores for `doc` landed (lossmap/scoresReady for `version`). */
  async update(
    doc: vscode.TextDocument,
    version?: number,
    expectThreshold?: number,
  ): Promise<void> {
    if (!this.enabled || !this.source) {
      return;
    }
    if (version !== undefined && version !== doc.version) {
      return; // typed over already: the server publishes the newer version when it is scored
    }
    const key = doc.uri.toString();
    const id = ++this.counter;
    this.requests.set(key, id);
    for (let attempt = 0; ; attempt++) {
      let scores: DocumentScores | null | undefined;
      try {
        scores = await this.source(doc);
      } catch (err) {
        this.log(`lossmap/documentScores failed for ${key}: ${String(err)}`);
        return;
      }
      if (this.requests.get(key) !== id || !this.enabled || doc.isClosed) {
        return; // superseded, switched off or closed meanwhile
      }
      if (!scores) {
        this.forget(key); // not scored (too large, excluded language, failed): no tint
        return;
      }
      // After a displayThreshold change the server applies the new setting asynchronously;
      // its answer says which threshold it used, so ask again until it is the new one.
      if (
        expectThreshold !== undefined &&
        scores.displayThreshold !== expectThreshold &&
        attempt < RETRIES
      ) {
        await sleep(RETRY_MS);
        continue;
      }
      if (scores.version !== doc.version) {
        return; // the text changed since: its decorations move with the edits until then
      }
      const ranges = planHeatMap(scores, {
        lineCount: doc.lineCount,
        lineText: (n) => doc.lineAt(n).text,
      });
      this.plans.set(key, {
        version: scores.version,
        ranges: ranges.map((level) => level.map(toRange)),
      });
      for (const editor of vscode.window.visibleTextEditors) {
        if (editor.document.uri.toString() === key) {
          this.show(editor);
        }
      }
      return;
    }
  }

  /** Fetch scores for every visible document (after a restart, a toggle or a setting change). */
  async refreshVisible(expectThreshold?: number): Promise<void> {
    const docs = new Map<string, vscode.TextDocument>();
    for (const editor of vscode.window.visibleTextEditors) {
      docs.set(editor.document.uri.toString(), editor.document);
    }
    await Promise.all(
      [...docs.values()].map((doc) => this.update(doc, undefined, expectThreshold)),
    );
  }

  /** Draw the stored plan on `editor`, if it is for the text the editor shows. */
  private show(editor: vscode.TextEditor): void {
    const plan = this.plans.get(editor.document.uri.toString());
    if (!this.enabled || !plan) {
      return;
    }
    if (plan.version !== editor.document.version) {
      // A newly shown editor of an edited document: old ranges would be misplaced here.
      void this.update(editor.document);
      return;
    }
    this.types.forEach((type, i) => editor.setDecorations(type, plan.ranges[i] ?? []));
  }

  private forget(key: string): void {
    this.plans.delete(key);
    this.requests.delete(key);
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document.uri.toString() === key) {
        this.types.forEach((type) => editor.setDecorations(type, []));
      }
    }
  }

  clearAll(): void {
    this.plans.clear();
    this.requests.clear();
    for (const editor of vscode.window.visibleTextEditors) {
      this.types.forEach((type) => editor.setDecorations(type, []));
    }
  }

  /** Ranges per level currently planned for `uri` (for tests and the e2e check). */
  planned(uri: string): number[] | undefined {
    return this.plans.get(uri)?.ranges.map((r) => r.length);
  }

  dispose(): void {
    this.clearAll();
    for (const d of this.disposables) {
      d.dispose();
    }
    for (const t of this.types) {
      t.dispose();
    }
  }
}
