const NAME = "latchkey_http_request_duration_seconds";
const HELP = "HTTP requests by method, route pattern and status; _count gives the request rate";
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

interface Series {
  /** `method="GET",route="/users/me",status="200"`, escaped once. */
  labels: string;
  /** Requests per bucket (not cumulative), then the sum and count. */
  buckets: number[];
  sum: number;
  count: number;
}

/** Times one route's requests: (method, status, seconds). */
export type RouteRecorder = (method: string, status: number, seconds: number) => void;

/**
 * The request-duration histogram, kept by route. prom-client's `observe` turns the label
 * set into a string key on every call, which with Fastify's `request.routeOptions` cost
 * ~5 % of GET /users/me (bench/RESULTS.md, 2026-12-06); here each route holds a recorder
 * that finds its series by method and status, so a request adds to one bucket and two
 * totals. Rendered in the Prometheus text format (version 0.0.4) beside the registry's.
 */
export class RequestDurations {
  private readonly series: Series[] = [];
  private readonly recorders = new Map<string, RouteRecorder>();

  /**
   * The recorder for one route pattern ("unmatched" for requests no route took). One per
   * pattern, whoever asks: two recorders of one route would each add a series with the
   * same labels, which the exposition format does not allow.
   */
  recorder(route: string): RouteRecorder {
    let recorder = this.recorders.get(route);
    if (!recorder) {
      recorder = this.newRecorder(route);
      this.recorders.set(route, recorder);
    }
    return recorder;
  }

  private newRecorder(route: string): RouteRecorder {
    const byMethod = new Map<string, Map<number, Series>>();
    return (method, status, seconds) => {
      let byStatus = byMethod.get(method);
      if (!byStatus) {
        byStatus = new Map();
        byMethod.set(method, byStatus);
      }
      let series = byStatus.get(status);
      if (!series) {
        series = this.add(method, route, status);
        byStatus.set(status, series);
      }
      const bucket = BUCKETS.findIndex((bound) => seconds <= bound);
      if (bucket >= 0) series.buckets[bucket] = (series.buckets[bucket] ?? 0) + 1;
      series.sum += seconds;
      series.count++;
    };
  }

  render(): string {
    const lines = [`# HELP ${NAME} ${HELP}`, `# TYPE ${NAME} histogram`];
    for (const { labels, buckets, sum, count } of this.series) {
      let cumulative = 0;
      BUCKETS.forEach((bound, i) => {
        cumulative += buckets[i] ?? 0;
        lines.push(`${NAME}_bucket{le="${bound}",${labels}} ${cumulative}`);
      });
      lines.push(`${NAME}_bucket{le="+Inf",${labels}} ${count}`);
      lines.push(`${NAME}_sum{${labels}} ${sum}`);
      lines.push(`${NAME}_count{${labels}} ${count}`);
    }
    return `${lines.join("\n")}\n`;
  }

  private add(method: string, route: string, status: number): Series {
    const labels = `method="${escapeLabel(method)}",route="${escapeLabel(route)}",status="${status}"`;
    const series = { labels, buckets: BUCKETS.map(() => 0), sum: 0, count: 0 };
    this.series.push(series);
    return series;
  }
}

/** Label values escape backslash, double quote and line feed (exposition format). */
const escapeLabel = (value: string) =>
  value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
