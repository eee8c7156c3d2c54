// Charts for benchmarks, simulations and reports: Vega-Lite specs rendered to SVG in-process (no browser, no
// canvas). Chosen over hand-written SVG because it handles axes, legends, scales and facets correctly.
import type * as vl from 'vega-lite';

export type VegaLiteSpec = vl.TopLevelSpec;

/** Vega is loaded on first use: processes that never draw (hylicsd, which shares the CLI's entry point) do not
 * pay its ~40 MB. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export interface ChartSize { width?: number; height?: number }

/** The top level every chart here shares: the Vega-Lite schema and the title. */
function chart(title: string, body: Record<string, unknown>): VegaLiteSpec {
  return { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title, ...body } as VegaLiteSpec;
}

export interface SeriesPoint { x: number; y: number; series: string }

/** A line chart of several named series sharing x and y axes. */
export function lineChart(
  title: string,
  points: SeriesPoint[],
  xTitle: string,
  yTitle: string,
  opts: ChartSize = {},
): VegaLiteSpec {
  return chart(title, {
    width: opts.width ?? 640,
    height: opts.height ?? 300,
    data: { values: points },
    mark: { type: 'line', interpolate: 'step-after' },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: xTitle },
      y: { field: 'y', type: 'quantitative', title: yTitle },
      color: { field: 'series', type: 'nominal', title: null },
    },
  });
}

export interface BarPoint { group: string; bar: string; value: number }

/** Grouped bars: one group per x category, one bar per configuration (the benchmarks' side-by-side ratios). */
export function groupedBarChart(
  title: string,
  points: BarPoint[],
  yTitle: string,
  opts: ChartSize = {},
): VegaLiteSpec {
  return chart(title, {
    data: { values: points },
    mark: 'bar',
    width: { step: 14 },
    height: opts.height ?? 260,
    encoding: {
      column: { field: 'group', type: 'nominal', title: null, header: { labelAngle: 0, labelAlign: 'center' } },
      x: { field: 'bar', type: 'nominal', axis: null },
      y: { field: 'value', type: 'quantitative', title: yTitle },
      color: { field: 'bar', type: 'nominal', title: null },
    },
  });
}
