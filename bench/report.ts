/**
 * Bench report: results.json (everything), results.md (one table: every
 * figure next to its baseline and the ratio) and qps-recall.svg (hand-written
 * SVG: QPS on a log axis vs recall@10, one series per system).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Figure {
  section: string;
  measure: string;
  value: number | string;
  unit: string;
  baselineName?: string;
  baseline?: number;
  /** value / baseline (or as stated in `ratioNote`). */
  ratio?: number;
  /** e.g. ">= 0.3x" */
  target?: string;
  met?: boolean;
  note?: string;
}

export interface Point {
  system: string;
  label: string;
  qps: number;
  recall: number;
}

export interface Report {
  scenario: string;
  /** Short title for the plot. */
  title?: string;
  date: string;
  startedAt: string;
  durationS: number;
  machine: Record<string, string | number>;
  dataset: string;
  config: Record<string, unknown>;
  figures: Figure[];
  points: Point[];
  skipped: { what: string; why: string }[];
  notes: string[];
  raw: Record<string, unknown>;
}

const fmtNum = (v: number): string => {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 1000) return Math.round(v).toLocaleString("en-US");
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
};

export const fmtValue = (v: number | string | undefined, unit = ""): string => {
  if (v === undefined) return "";
  if (typeof v === "string") return v;
  return `${fmtNum(v)}${unit ? ` ${unit}` : ""}`;
};

export const markdownTable = (figs: readonly Figure[]): string => {
  const head = "| Section | Measure | natsvec | Baseline | Baseline value | Ratio | Target | Met |\n|---|---|---:|---|---:|---:|---|:-:|";
  const rows = figs.map((f) => {
    const ratio = f.ratio === undefined ? "" : `${f.ratio >= 100 ? Math.round(f.ratio) : f.ratio.toFixed(2)}x`;
    const met = f.met === undefined ? "" : f.met ? "yes" : "**no**";
    const measure = f.note ? `${f.measure} (${f.note})` : f.measure;
    return `| ${f.section} | ${measure} | ${fmtValue(f.value, f.unit)} | ${f.baselineName ?? ""} | ${fmtValue(f.baseline, f.baseline === undefined ? "" : f.unit)} | ${ratio} | ${f.target ?? ""} | ${met} |`;
  });
  return [head, ...rows].join("\n");
};

export const markdownReport = (r: Report): string => {
  const lines: string[] = [];
  lines.push(`# natsvec bench: ${r.scenario} (${r.date})`);
  lines.push("");
  lines.push(`Dataset: ${r.dataset}`);
  lines.push("");
  lines.push(`Machine: ${Object.entries(r.machine).map(([k, v]) => `${k} ${v}`).join(", ")}. Run took ${r.durationS.toFixed(0)} s.`);
  lines.push("");
  lines.push(`Config: ${Object.entries(r.config).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`).join(", ")}`);
  lines.push("");
  lines.push(markdownTable(r.figures));
  lines.push("");
  if (r.points.length > 0) {
    lines.push("QPS vs recall@10 (single query per request, concurrency as labelled): ![qps-recall](qps-recall.svg)");
    lines.push("");
    lines.push("| System | Point | QPS | recall@10 |\n|---|---|---:|---:|");
    for (const p of r.points) lines.push(`| ${p.system} | ${p.label} | ${fmtNum(p.qps)} | ${p.recall.toFixed(4)} |`);
    lines.push("");
  }
  if (r.skipped.length > 0) {
    lines.push("Skipped:");
    for (const s of r.skipped) lines.push(`- ${s.what}: ${s.why}`);
    lines.push("");
  }
  if (r.notes.length > 0) {
    lines.push("Notes:");
    for (const n of r.notes) lines.push(`- ${n}`);
    lines.push("");
  }
  return lines.join("\n");
};

const COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22", "#393b79", "#e7969c", "#637939", "#843c39"];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** QPS (log y) vs recall@10 (x); points of one system are joined in the given order. */
export const qpsRecallSvg = (points: readonly Point[], title: string): string => {
  const W = 760,
    H = 480,
    L = 70,
    R = 270,
    T = 40,
    B = 50;
  const pw = W - L - R,
    ph = H - T - B;
  const good = points.filter((p) => p.qps > 0 && Number.isFinite(p.qps) && Number.isFinite(p.recall));
  const rMin = Math.min(0.9, ...good.map((p) => p.recall));
  const xMin = Math.max(0, Math.floor(rMin * 20) / 20);
  const xMax = 1.0;
  const lq = good.map((p) => Math.log10(p.qps));
  const yMin = Math.floor(Math.min(0, ...lq));
  const yMax = Math.ceil(Math.max(1, ...lq));
  const x = (r: number) => L + ((r - xMin) / (xMax - xMin || 1)) * pw;
  const y = (q: number) => T + ph - ((Math.log10(q) - yMin) / (yMax - yMin || 1)) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${L + pw / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  // grid + axes
  for (let e = yMin; e <= yMax; e++) {
    const yy = y(10 ** e);
    out.push(`<line x1="${L}" y1="${yy}" x2="${L + pw}" y2="${yy}" stroke="#ddd"/>`);
    out.push(`<text x="${L - 6}" y="${yy + 4}" text-anchor="end">${10 ** e >= 1 ? (10 ** e).toLocaleString("en-US") : 10 ** e}</text>`);
    if (e < yMax)
      for (let m = 2; m < 10; m++) {
        const ym = y(m * 10 ** e);
        out.push(`<line x1="${L}" y1="${ym}" x2="${L + pw}" y2="${ym}" stroke="#f2f2f2"/>`);
      }
  }
  const xTicks = Math.round((xMax - xMin) / 0.05);
  for (let i = 0; i <= xTicks; i++) {
    const r = xMin + i * 0.05;
    const xx = x(r);
    out.push(`<line x1="${xx}" y1="${T}" x2="${xx}" y2="${T + ph}" stroke="#eee"/>`);
    out.push(`<text x="${xx}" y="${T + ph + 16}" text-anchor="middle">${r.toFixed(2)}</text>`);
  }
  out.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${L + pw / 2}" y="${H - 12}" text-anchor="middle">recall@10</text>`);
  out.push(`<text x="16" y="${T + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${T + ph / 2})">queries per second (log)</text>`);
  const systems = [...new Set(good.map((p) => p.system))];
  // One marker shape per system so coinciding points (e.g. several at recall 1.0) stay distinguishable.
  const marker = (si: number, cx: number, cy: number, c: string, tip: string) => {
    const t = `<title>${esc(tip)}</title>`;
    switch (si % 6) {
      case 0:
        return `<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="4.5" fill="${c}">${t}</circle>`;
      case 1:
        return `<rect x="${(cx - 4).toFixed(1)}" y="${(cy - 4).toFixed(1)}" width="8" height="8" fill="none" stroke="${c}" stroke-width="2">${t}</rect>`;
      case 2:
        return `<polygon points="${cx.toFixed(1)},${(cy - 5).toFixed(1)} ${(cx + 5).toFixed(1)},${(cy + 4).toFixed(1)} ${(cx - 5).toFixed(1)},${(cy + 4).toFixed(1)}" fill="${c}">${t}</polygon>`;
      case 3:
        return `<polygon points="${cx.toFixed(1)},${(cy - 5).toFixed(1)} ${(cx + 5).toFixed(1)},${cy.toFixed(1)} ${cx.toFixed(1)},${(cy + 5).toFixed(1)} ${(cx - 5).toFixed(1)},${cy.toFixed(1)}" fill="none" stroke="${c}" stroke-width="2">${t}</polygon>`;
      case 4:
        return `<path d="M${(cx - 5).toFixed(1)},${cy.toFixed(1)} H${(cx + 5).toFixed(1)} M${cx.toFixed(1)},${(cy - 5).toFixed(1)} V${(cy + 5).toFixed(1)}" stroke="${c}" stroke-width="2.5">${t}</path>`;
      default:
        return `<polygon points="${(cx - 5).toFixed(1)},${(cy - 4).toFixed(1)} ${(cx + 5).toFixed(1)},${(cy - 4).toFixed(1)} ${cx.toFixed(1)},${(cy + 5).toFixed(1)}" fill="none" stroke="${c}" stroke-width="2">${t}</polygon>`;
    }
  };
  // Labels: placed left of their point, nudged down (at most 3 lines) until they do not overlap an earlier
  // label; where points crowd (e.g. many at recall 1.0) a label that finds no room is left out (the
  // marker's tooltip and the table still name the point).
  const placed: { x0: number; x1: number; y0: number; y1: number }[] = [];
  const placeLabel = (px: number, py: number, text: string): number | undefined => {
    const w = text.length * 5.6;
    let yy = py - 6;
    for (let tries = 0; tries < 3; tries++) {
      const box = { x0: px - 8 - w, x1: px - 8, y0: yy - 9, y1: yy + 1 };
      if (!placed.some((b) => b.x0 < box.x1 && box.x0 < b.x1 && b.y0 < box.y1 && box.y0 < b.y1)) {
        placed.push(box);
        return yy;
      }
      yy += 11;
    }
    return undefined;
  };
  // Stable colour and marker per known system, so plots of different runs read the same.
  // (First match wins: "natsvec hnsw c=16" is listed before its prefix "natsvec hnsw c=1". Six marker shapes.)
  const KNOWN = [
    "natsvec (flat",
    "natsvec hnsw c=16",
    "scan",
    "hnswlib",
    "natsvec hnsw c=1",
    "usearch",
    "pgvector",
    "natsvec hnsw c=64",
    "natsvec ivf_flat c=16",
    "natsvec ivf_flat c=1",
    "natsvec ivf_flat c=64",
    "lancedb ivf_flat",
    "lancedb ivf_hnsw",
  ];
  systems.forEach((s, i) => {
    const known = KNOWN.findIndex((k) => s.toLowerCase().startsWith(k));
    const si = known >= 0 ? known : KNOWN.length + i;
    const c = COLORS[si % COLORS.length]!;
    const ps = good.filter((p) => p.system === s);
    if (ps.length > 1) out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${ps.map((p) => `${x(p.recall).toFixed(1)},${y(p.qps).toFixed(1)}`).join(" ")}"/>`);
    for (const p of ps) {
      const px = x(p.recall),
        py = y(p.qps);
      out.push(marker(si, px, py, c, `${s} ${p.label}: ${fmtNum(p.qps)} QPS, recall ${p.recall.toFixed(4)}`));
      const ly = placeLabel(px, py, p.label);
      if (ly !== undefined) out.push(`<text x="${(px - 8).toFixed(1)}" y="${ly.toFixed(1)}" text-anchor="end" font-size="10" fill="${c}">${esc(p.label)}</text>`);
    }
    const ly = T + 10 + i * 20;
    out.push(marker(si, L + pw + 20, ly, c, s));
    out.push(`<text x="${L + pw + 30}" y="${ly + 4}">${esc(s)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
};

export const writeReport = (dir: string, r: Report): { md: string } => {
  mkdirSync(dir, { recursive: true });
  const json = JSON.stringify(r, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2);
  writeFileSync(join(dir, "results.json"), json + "\n");
  const md = markdownReport(r);
  writeFileSync(join(dir, "results.md"), md);
  if (r.points.length > 0) writeFileSync(join(dir, "qps-recall.svg"), qpsRecallSvg(r.points, r.title ?? r.scenario));
  return { md };
};
