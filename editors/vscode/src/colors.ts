// Surprise level -> heat-map colour. The colours are contributed as theme colours
// (package.json `contributes.colors`), so every theme kind gets its own default and users can
// override them with `workbench.colorCustomizations`. They are translucent: the editor
// background shows through, so one hue ramp works on light and dark themes alike, and the
// text on top keeps its syntax colour (a test checks the contrast on the default themes).

export type ThemeKind = 'dark' | 'light' | 'highContrast' | 'highContrastLight';

export interface LevelStyle {
  /** The server's level number (features.surprise_level): 1 .. 4. */
  level: number;
  /** The semantic token type the server uses for this level. */
  tokenType: string;
  /** Theme colour id of the background. */
  colorId: string;
  description: string;
  /** #RRGGBBAA per theme kind. */
  defaults: Record<ThemeKind, string>;
  /** Marked in the overview ruler too (only the upper levels, to keep the ruler sparse). */
  ruler: boolean;
}

export const LEVELS: readonly LevelStyle[] = [
  {
    level: 1,
    tokenType: 'surpriseLow',
    colorId: 'lossmap.surpriseLowBackground',
    description: 'Heat-map background of tokens just above the display threshold.',
    defaults: {
      dark: '#c8b40038',
      light: '#e6c80040',
      highContrast: '#c8b40048',
      highContrastLight: '#e6c80048',
    },
    ruler: false,
  },
  {
    level: 2,
    tokenType: 'surpriseMedium',
    colorId: 'lossmap.surpriseMediumBackground',
    description: 'Heat-map background of tokens 3 bits above the display threshold.',
    defaults: {
      dark: '#e0801a50',
      light: '#f08c0048',
      highContrast: '#e0801a60',
      highContrastLight: '#f08c0050',
    },
    ruler: false,
  },
  {
    level: 3,
    tokenType: 'surpriseHigh',
    colorId: 'lossmap.surpriseHighBackground',
    description: 'Heat-map background of tokens 6 bits above the display threshold.',
    defaults: {
      dark: '#e0442d68',
      light: '#ff503c50',
      highContrast: '#e0442d78',
      highContrastLight: '#ff503c58',
    },
    ruler: true,
  },
  {
    level: 4,
    tokenType: 'surpriseSevere',
    colorId: 'lossmap.surpriseSevereBackground',
    description: 'Heat-map background of tokens 9 or more bits above the display threshold.',
    defaults: {
      dark: '#d42a7a88',
      light: '#e0287860',
      highContrast: '#d42a7a98',
      highContrastLight: '#e0287868',
    },
    ruler: true,
  },
];

/** Index into LEVELS for a server level, or undefined when the token is not to be tinted. */
export function levelIndex(level: number | null | undefined): number | undefined {
  // 0 / null mean "below the display threshold"; anything outside the scale is ignored
  // rather than guessed at, so a future server with more levels cannot paint wrong colours.
  if (typeof level !== 'number' || !Number.isInteger(level)) {
    return undefined;
  }
  return level >= 1 && level <= LEVELS.length ? level - 1 : undefined;
}

// -- colour arithmetic, used by the tests to keep the defaults readable --------------------

export interface Rgba {
  r: number;
  g: number;
  b: number;
  a: number;
}

export function parseHex(hex: string): Rgba {
  const m = /^#([0-9a-f]{6})([0-9a-f]{2})?$/i.exec(hex);
  if (!m) {
    throw new Error(`not a #RRGGBB[AA] colour: ${hex}`);
  }
  const n = parseInt(m[1], 16);
  return {
    r: (n >> 16) & 255,
    g: (n >> 8) & 255,
    b: n & 255,
    a: m[2] === undefined ? 1 : parseInt(m[2], 16) / 255,
  };
}

/** `top` painted over the opaque `bottom`. */
export function blend(top: Rgba, bottom: Rgba): Rgba {
  const mix = (t: number, b: number) => t * top.a + b * (1 - top.a);
  return { r: mix(top.r, bottom.r), g: mix(top.g, bottom.g), b: mix(top.b, bottom.b), a: 1 };
}

/** WCAG 2 relative luminance. */
export function luminance(c: Rgba): number {
  const lin = (v: number) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
}

/** WCAG 2 contrast ratio (1 .. 21). */
export function contrast(a: Rgba, b: Rgba): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}
