// Shared bits of the unit tests.
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { LineSource } from '../../src/ranges';

/** editors/vscode, from out/test/unit (compiled) or test/unit (source). */
export const EXTENSION_DIR = path.resolve(
  __dirname,
  __dirname.includes(`${path.sep}out${path.sep}`) ? '../../..' : '../..',
);

export function packageJson(): any {
  return JSON.parse(fs.readFileSync(path.join(EXTENSION_DIR, 'package.json'), 'utf8'));
}

export function lines(text: string): LineSource {
  const all = text.split('\n');
  return { lineCount: all.length, lineText: (n) => all[n] ?? '' };
}
