// Tells the server which lines of each visible document the user sees, so that the judge
// confirms the suspicious lines there before the rest of the file's (lossmap/visibleRanges).

import * as vscode from 'vscode';

/** Sends one document's visible line spans (0-based, inclusive) to the server. */
export type ReportVisible = (
  doc: vscode.TextDocument,
  lines: { first: number; last: number }[],
) => void;

/** Scrolling fires many events: only the position after a short pause is reported. */
const DELAY_MS = 250;

export class VisibleRangeReporter implements vscode.Disposable {
  private report: ReportVisible | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly disposables: vscode.Disposable[];

  constructor() {
    this.disposables = [
      vscode.window.onDidChangeTextEditorVisibleRanges(() => this.schedule()),
      vscode.window.onDidChangeVisibleTextEditors(() => this.schedule()),
    ];
  }

  /** Where reports go; undefined while the server is not running. */
  setReport(report: ReportVisible | undefined): void {
    this.report = report;
    if (report) {
      this.schedule();
    }
  }

  private schedule(): void {
    if (this.timer) {
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => this.flush(), DELAY_MS);
  }

  private flush(): void {
    this.timer = undefined;
    const report = this.report;
    if (!report) {
      return;
    }
    // A document shown in several editors (splits) is reported once, with all its ranges:
    // the server keeps the last report per document.
    const byDoc = new Map<
      string,
      { doc: vscode.TextDocument; lines: { first: number; last: number }[] }
    >();
    for (const editor of vscode.window.visibleTextEditors) {
      const key = editor.document.uri.toString();
      const entry = byDoc.get(key) ?? { doc: editor.document, lines: [] };
      entry.lines.push(
        ...editor.visibleRanges.map((r) => ({ first: r.start.line, last: r.end.line })),
      );
      byDoc.set(key, entry);
    }
    for (const { doc, lines } of byDoc.values()) {
      report(doc, lines);
    }
  }

  dispose(): void {
    if (this.timer) {
      clearTimeout(this.timer);
    }
    for (const d of this.disposables) {
      d.dispose();
    }
  }
}
