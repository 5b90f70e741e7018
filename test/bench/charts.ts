/**
 * Hand-made SVG charts for docs/benchmarks.md (no dependency): a bar chart of throughput
 * per case (bar at the median, a whisker from the minimum to the median, a dot for every
 * process) and a line chart of RSS over time. Each function answers the SVG as a string;
 * writeCharts puts them next to docs/benchmarks.md and chartImage links one from the page.
 */
import fs from 'node:fs';
import path from 'node:path';

/** A chart file: `file` is its name next to docs/benchmarks.md, `alt` its text in the page. */
export interface Chart {
  file: string;
  alt: string;
  svg: string;
}

/** One bar: its values (one per process or run); drawn at their median. */
export interface BarSeries {
  name: string;
  values: readonly number[];
}

/** A level to read a bar against (a target), drawn as a dashed line across bar `bar` (default the first) and labelled on its left. */
export interface BarMark {
  value: number;
  label: string;
  bar?: number;
}

/** The bars of one case, side by side, in the same series order in every group. */
export interface BarGroup {
  label: string;
  bars: readonly BarSeries[];
  marks?: readonly BarMark[];
}

export interface RssPoint {
  /** ms since the series' start (e.g. the upload's start). */
  tMs: number;
  rssBytes: number;
}

export interface RssSeries {
  name: string;
  points: readonly RssPoint[];
}

export interface ChartOptions {
  /** A second line under the title (e.g. the machine and the Node version). */
  subtitle?: string;
}

/** Series colours, in order (the first is tusgate by convention). */
const PALETTE = ['#2563eb', '#ea580c', '#6b7280', '#16a34a', '#9333ea', '#db2777', '#0891b2', '#ca8a04'];
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';
const INK = '#1f2937';
const GRID = '#e5e7eb';

const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const n = (v: number) => (Number.isFinite(v) ? Number(v.toFixed(1)) : 0);
const finite = (values: readonly number[]) => values.filter((v) => Number.isFinite(v));

function medianOf(values: readonly number[]): number {
  const sorted = finite(values).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Axis ticks from `low` to at least `high`: about `count` round steps (1, 2 or 5 x 10^k). */
export function niceTicks(low: number, high: number, count = 5): number[] {
  if (!Number.isFinite(low) || !Number.isFinite(high) || high <= low) return [low || 0, (low || 0) + 1];
  const raw = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * power >= raw) ?? 10) * power;
  const first = Math.floor(low / step) * step;
  const ticks: number[] = [];
  for (let v = first; v < high + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks.at(-1)! < high) ticks.push(Number((ticks.at(-1)! + step).toPrecision(12)));
  return ticks;
}

const tickLabel = (v: number) => (Math.abs(v) >= 1000 ? v.toLocaleString('en-US') : String(Number(v.toPrecision(6))));

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** The SVG's opening, background, title and subtitle. */
function open(frame: Frame, title: string, options: ChartOptions): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${frame.width}" height="${frame.height}" viewBox="0 0 ${frame.width} ${frame.height}" ${FONT} role="img" aria-label="${esc(title)}">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${frame.width}" height="${frame.height}" fill="#ffffff"/>`,
    `<text x="${frame.left}" y="24" font-size="16" font-weight="600" fill="${INK}">${esc(title)}</text>`,
  ];
  if (options.subtitle) out.push(`<text x="${frame.left}" y="43" font-size="12" fill="#4b5563">${esc(options.subtitle)}</text>`);
  return out;
}

/** Horizontal grid lines with their labels on the left, and the y axis' title. */
function yAxis(frame: Frame, ticks: number[], y: (v: number) => number, label: string): string[] {
  const out: string[] = [];
  for (const t of ticks) {
    out.push(`<line x1="${frame.left}" x2="${frame.width - frame.right}" y1="${n(y(t))}" y2="${n(y(t))}" stroke="${GRID}"/>`);
    out.push(`<text x="${frame.left - 6}" y="${n(y(t) + 4)}" font-size="11" text-anchor="end" fill="#4b5563">${esc(tickLabel(t))}</text>`);
  }
  const mid = (frame.top + frame.height - frame.bottom) / 2;
  out.push(`<text x="14" y="${n(mid)}" font-size="12" fill="${INK}" text-anchor="middle" transform="rotate(-90 14 ${n(mid)})">${esc(label)}</text>`);
  return out;
}

/** Where each legend entry goes: rows of swatch + name from x0, wrapped at `maxX`. */
function legendLayout(names: readonly string[], x0: number, maxX: number): Array<{ x: number; row: number }> {
  let x = x0;
  let row = 0;
  return names.map((name) => {
    const width = 22 + name.length * 6.6;
    if (x + width > maxX && x > x0) {
      x = x0;
      row += 1;
    }
    const at = { x, row };
    x += width + 14;
    return at;
  });
}

const LEGEND_ROW = 18;

/** Extra height the legend needs beyond its first row. */
const legendExtra = (names: readonly string[], width: number) => LEGEND_ROW * Math.max(0, ...legendLayout(names, 64, width - 20).map((p) => p.row));

/** A row (or rows) of colour swatches and names, the first row's baseline at y0. */
function legend(frame: Frame, names: readonly string[], x0: number, y0: number): string[] {
  const out: string[] = [];
  legendLayout(names, x0, frame.width - frame.right).forEach(({ x, row }, i) => {
    const y = y0 + row * LEGEND_ROW;
    out.push(`<rect x="${n(x)}" y="${n(y - 10)}" width="12" height="12" rx="2" fill="${PALETTE[i % PALETTE.length]}"/>`);
    out.push(`<text x="${n(x + 17)}" y="${n(y)}" font-size="12" fill="${INK}">${esc(names[i]!)}</text>`);
  });
  return out;
}

/**
 * Throughput per case: for each group (case) a bar per series at the median of its values,
 * a whisker from the minimum to the median, and a dot for every value (one per process).
 * The median is written above each bar. `unit` names the y axis (e.g. "MB/s").
 */
export function throughputChart(title: string, groups: readonly BarGroup[], unit = 'MB/s', options: ChartOptions = {}): string {
  const names = groups[0]?.bars.map((b) => b.name) ?? [];
  const extra = legendExtra(names, 760);
  const frame: Frame = { width: 760, height: 430 + extra, left: 64, right: 20, top: options.subtitle ? 62 : 46, bottom: 92 + extra };
  const all = groups.flatMap((g) => g.bars.flatMap((b) => finite(b.values)));
  const ticks = niceTicks(0, Math.max(1, ...all) * 1.08);
  const top = ticks.at(-1)!;
  const plotH = frame.height - frame.top - frame.bottom;
  const y = (v: number) => frame.top + plotH * (1 - v / top);
  const plotW = frame.width - frame.left - frame.right;
  const groupW = plotW / Math.max(1, groups.length);
  const barW = Math.min(70, (groupW * 0.6) / Math.max(1, names.length));

  const out = open(frame, title, options);
  out.push(...yAxis(frame, ticks, y, unit));
  groups.forEach((group, g) => {
    const center = frame.left + groupW * (g + 0.5);
    const x0 = center - (barW * group.bars.length) / 2;
    group.bars.forEach((bar, b) => {
      const values = finite(bar.values);
      const med = medianOf(values);
      const min = values.length ? Math.min(...values) : Number.NaN;
      const max = values.length ? Math.max(...values) : Number.NaN;
      const x = x0 + b * barW;
      const cx = x + barW / 2;
      const colour = PALETTE[b % PALETTE.length];
      const tip = `${group.label}, ${bar.name}: median ${med.toFixed(1)}, min ${min.toFixed(1)}, max ${max.toFixed(1)} ${unit} over ${values.length}`;
      out.push(`<g><title>${esc(tip)}</title>`);
      if (Number.isFinite(med)) {
        out.push(`<rect x="${n(x + 4)}" y="${n(y(med))}" width="${n(barW - 8)}" height="${n(y(0) - y(med))}" fill="${colour}" fill-opacity="0.82"/>`);
        // whisker: minimum to median, with a cap at the minimum
        out.push(`<line x1="${n(cx)}" x2="${n(cx)}" y1="${n(y(min))}" y2="${n(y(med))}" stroke="${INK}" stroke-width="1.5"/>`);
        out.push(`<line x1="${n(cx - 8)}" x2="${n(cx + 8)}" y1="${n(y(min))}" y2="${n(y(min))}" stroke="${INK}" stroke-width="1.5"/>`);
      }
      values.forEach((v, i) => {
        // spread the dots across the bar, in the order of the values (process 1 leftmost)
        const dx = values.length > 1 ? ((i / (values.length - 1)) - 0.5) * (barW - 24) : 0;
        out.push(`<circle cx="${n(cx + dx)}" cy="${n(y(v))}" r="3.2" fill="#ffffff" stroke="${INK}" stroke-width="1.2"/>`);
      });
      if (Number.isFinite(med)) {
        // the median inside the bar at its foot, clear of the dots and whisker (above the bar when it is too short)
        const inside = y(0) - y(med) > 24;
        out.push(
          `<text x="${n(cx)}" y="${n(inside ? y(0) - 8 : y(med) - 6)}" font-size="11" font-weight="600" text-anchor="middle" fill="${inside ? '#ffffff' : INK}">${esc(med.toFixed(0))}</text>`,
        );
      }
      out.push('</g>');
    });
    // target marks: dashed lines over their bar, labels on its left, kept at least 11 px apart
    let lastLabelY = Number.POSITIVE_INFINITY;
    for (const mark of [...(group.marks ?? [])].filter((m) => Number.isFinite(m.value)).sort((a, b) => a.value - b.value)) {
      const x = x0 + (mark.bar ?? 0) * barW;
      const my = y(mark.value);
      const labelY = Math.min(my + 3.5, lastLabelY - 11);
      lastLabelY = labelY;
      out.push(`<line x1="${n(x - 2)}" x2="${n(x + barW + 2)}" y1="${n(my)}" y2="${n(my)}" stroke="${INK}" stroke-width="1.2" stroke-dasharray="5 3"/>`);
      out.push(`<text x="${n(x - 5)}" y="${n(labelY)}" font-size="10" text-anchor="end" fill="${INK}">${esc(mark.label)}</text>`);
    }
    out.push(`<text x="${n(center)}" y="${n(y(0) + 18)}" font-size="12" text-anchor="middle" fill="${INK}">${esc(group.label)}</text>`);
  });
  out.push(`<line x1="${frame.left}" x2="${frame.width - frame.right}" y1="${n(y(0))}" y2="${n(y(0))}" stroke="${INK}"/>`);
  const legendY = frame.height - frame.bottom + 46;
  out.push(...legend(frame, names, frame.left, legendY));
  out.push(
    `<text x="${frame.left}" y="${frame.height - 12}" font-size="11" fill="#4b5563">bar and number: median; whisker: minimum to median; dots: every process, in run order${groups.some((g) => g.marks?.length) ? '; dashed: targets' : ''}</text>`,
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/**
 * RSS over time: one line per series, x in seconds since each series' start, y in MB
 * (10^6 bytes), from 0 unless `fromZero` is false (then from just under the lowest sample).
 */
export function rssChart(title: string, series: readonly RssSeries[], options: ChartOptions & { fromZero?: boolean } = {}): string {
  const extra = legendExtra(series.map((s) => s.name), 760);
  const frame: Frame = { width: 760, height: 400 + extra, left: 64, right: 20, top: options.subtitle ? 62 : 46, bottom: 80 + extra };
  const points = series.flatMap((s) => s.points.filter((p) => Number.isFinite(p.tMs) && Number.isFinite(p.rssBytes)));
  const mbs = points.map((p) => p.rssBytes / 1e6);
  const xTicks = niceTicks(0, Math.max(0.1, ...points.map((p) => p.tMs / 1000)), 8);
  const low = options.fromZero === false && mbs.length ? Math.min(...mbs) * 0.95 : 0;
  const yTicks = niceTicks(low, Math.max(low + 1, ...mbs) * 1.05);
  const [y0, y1] = [yTicks[0]!, yTicks.at(-1)!];
  const x1 = xTicks.at(-1)!;
  const plotW = frame.width - frame.left - frame.right;
  const plotH = frame.height - frame.top - frame.bottom;
  const x = (s: number) => frame.left + (plotW * s) / x1;
  const y = (mb: number) => frame.top + plotH * (1 - (mb - y0) / (y1 - y0));

  const out = open(frame, title, options);
  out.push(...yAxis(frame, yTicks, y, 'server RSS, MB'));
  for (const t of xTicks) {
    out.push(`<line x1="${n(x(t))}" x2="${n(x(t))}" y1="${frame.top}" y2="${n(y(y0))}" stroke="${GRID}"/>`);
    out.push(`<text x="${n(x(t))}" y="${n(y(y0) + 16)}" font-size="11" text-anchor="middle" fill="#4b5563">${esc(tickLabel(t))}</text>`);
  }
  out.push(`<text x="${n(frame.left + plotW / 2)}" y="${n(y(y0) + 34)}" font-size="12" text-anchor="middle" fill="${INK}">seconds</text>`);
  series.forEach((s, i) => {
    const line = s.points
      .filter((p) => Number.isFinite(p.tMs) && Number.isFinite(p.rssBytes))
      .map((p) => `${n(x(p.tMs / 1000))},${n(y(p.rssBytes / 1e6))}`)
      .join(' ');
    if (!line) return;
    const peak = Math.max(...s.points.map((p) => p.rssBytes)) / 1e6;
    out.push(`<polyline points="${line}" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="1.8" stroke-linejoin="round"><title>${esc(`${s.name}: peak ${peak.toFixed(1)} MB`)}</title></polyline>`);
  });
  out.push(`<line x1="${frame.left}" x2="${frame.width - frame.right}" y1="${n(y(y0))}" y2="${n(y(y0))}" stroke="${INK}"/>`);
  out.push(...legend(frame, series.map((s) => s.name), frame.left, frame.height - 16 - extra));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Writes each chart as `dir/<file>`; answers the paths written. */
export function writeCharts(dir: string, charts: readonly Chart[]): string[] {
  fs.mkdirSync(dir, { recursive: true });
  return charts.map((chart) => {
    const file = path.join(dir, chart.file);
    fs.writeFileSync(file, chart.svg);
    return file;
  });
}

/** The Markdown image link of a chart, relative to docs/benchmarks.md. */
export const chartImage = (chart: Chart): string => `![${chart.alt.replace(/[[\]]/g, '')}](${chart.file})`;
