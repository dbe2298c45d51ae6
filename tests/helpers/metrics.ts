import { getMetricsFromIterator, type PromData, type PromHistogramData, type PromMetrics } from 'prom2javascript';

/** One `GET /metrics`, parsed by a Prometheus text-format parser. */
export interface Scrape {
  readonly status: number;
  readonly contentType: string | null;
  /** Metric families by name, with their type and help. */
  readonly families: PromMetrics;
  /** The sample of a counter or gauge whose labels include `labels`; undefined when there is none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** `_count` of the histogram series whose labels include `labels`; undefined when there is none. */
  count(name: string, labels?: Record<string, string>): number | undefined;
}

const matches = (labels: Record<string, string>, wanted: Record<string, string>) => Object.entries(wanted).every(([k, v]) => labels[k] === v);

/**
 * Scrapes `/metrics` of the gateway whose GraphQL URL is `graphqlUrl`. The parser rejects lines it
 * cannot read and histograms whose `+Inf` bucket is not their count; on top of it, every sample
 * must belong to a family declared with `# TYPE` and `# HELP`.
 */
export async function scrapeMetrics(graphqlUrl: string): Promise<Scrape> {
  const response = await fetch(graphqlUrl.replace(/\/graphql$/, '/metrics'));
  const text = await response.text();
  // The parser reads no NaN, which the format allows and prom-client writes for the event-loop
  // gauges before their first measurement: those samples are left out.
  const lines = text.split('\n').filter((line) => !/^[a-zA-Z_:][\w:]*(\{.*\})? NaN$/i.test(line));
  const families = await getMetricsFromIterator(lines[Symbol.iterator]());
  for (const [name, family] of Object.entries(families)) {
    if (!['counter', 'gauge', 'histogram', 'summary'].includes(family.type) || !family.help) {
      throw new Error(`metric family ${name} has no TYPE or HELP (type ${family.type})`);
    }
  }
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    families,
    value: (name, labels = {}) => (families[name]?.data as PromData[] | undefined)?.find((d) => matches(d.labels, labels))?.value,
    count: (name, labels = {}) => (families[name]?.data as PromHistogramData[] | undefined)?.find((d) => matches(d.labels, labels))?.count,
  };
}
