// The extension's own commands. Their ids differ from the server's (lossmap.rescore,
// lossmap.mostSurprising), which vscode-languageclient registers with VS Code itself.

import * as vscode from 'vscode';

import type { SurprisingSpot } from './protocol';
import { type SpotItem, spotItems } from './surprising';

export interface CommandTarget {
  toggleHeatMap(): Promise<void>;
  rescore(doc: vscode.TextDocument): Promise<void>;
  mostSurprising(doc: vscode.TextDocument, n: number): Promise<SurprisingSpot[] | undefined>;
  restart(): Promise<void>;
  showOutput(): void;
}

const MOST_SURPRISING_COUNT = 20;

function activeDocument(): vscode.TextDocument | undefined {
  const doc = vscode.window.activeTextEditor?.document;
  if (!doc) {
    void vscode.window.showInformationMessage('lossmap: open a file first.');
  }
  return doc;
}

function toRange(item: SpotItem): vscode.Range {
  const { start, end } = item.range;
  return new vscode.Range(start.line, start.character, end.line, end.character);
}

/** A quick pick of the most surprising spots; moving through it previews each spot in the
 * editor, accepting jumps there, escaping goes back to where the cursor was. */
async function pickSpot(editor: vscode.TextEditor, spots: SurprisingSpot[]): Promise<void> {
  const items: (vscode.QuickPickItem & { spot: SpotItem })[] = spotItems(spots).map((spot) => ({
    label: spot.label,
    description: spot.description,
    detail: spot.detail,
    spot,
  }));
  const before = { selection: editor.selection, visible: editor.visibleRanges[0] };
  const pick = vscode.window.createQuickPick<(typeof items)[number]>();
  pick.title = `lossmap: most surprising in ${vscode.workspace.asRelativePath(editor.document.uri)}`;
  pick.placeholder = 'Margin in bits: how much more the model expected something else';
  pick.matchOnDetail = true;
  pick.items = items;
  let accepted = false;
  const reveal = (item: SpotItem | undefined) => {
    if (!item) {
      return;
    }
    const range = toRange(item);
    editor.selection = new vscode.Selection(range.start, range.end);
    editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  };
  pick.onDidChangeActive((active) => reveal(active[0]?.spot));
  pick.onDidAccept(() => {
    accepted = true;
    reveal(pick.activeItems[0]?.spot);
    pick.hide();
  });
  pick.onDidHide(() => {
    if (!accepted) {
      editor.selection = before.selection;
      if (before.visible) {
        editor.revealRange(before.visible, vscode.TextEditorRevealType.AtTop);
      }
    }
    pick.dispose();
  });
  pick.show();
}

export function registerCommands(target: CommandTarget): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('lossmap.toggleHeatMap', () => target.toggleHeatMap()),
    vscode.commands.registerCommand('lossmap.rescoreNow', async () => {
      const doc = activeDocument();
      if (doc) {
        await target.rescore(doc);
      }
    }),
    vscode.commands.registerCommand('lossmap.showMostSurprising', async () => {
      const editor = vscode.window.activeTextEditor;
      if (!activeDocument() || !editor) {
        return;
      }
      const spots = await target.mostSurprising(editor.document, MOST_SURPRISING_COUNT);
      if (spots === undefined) {
        return; // no server: the caller said so already
      }
      if (spots.length === 0) {
        void vscode.window.showInformationMessage(
          'lossmap: nothing to show yet: this file has not been scored (or is not scored).',
        );
        return;
      }
      await pickSpot(editor, spots);
    }),
    vscode.commands.registerCommand('lossmap.restartServer', () => target.restart()),
    vscode.commands.registerCommand('lossmap.showOutput', () => target.showOutput()),
  ];
}
