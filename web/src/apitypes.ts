// Shapes of the analysis answers (docs/api.md: "Trace analysis", "RED
// metrics and service graph", "Baselines, anomalies and deployments").
// Fields the server may leave out are optional; the pages read every
// number through a fallback, so an older or newer server does not break
// them.

export interface REDPoint {
  t: string;
  calls: number;
  errors: number;
  ratePerSecond: number;
  errorRate: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
}

export interface REDSeries {
  service: string;
  operation: string;
  kind: string;
  version: string;
  calls: number;
  errors: number;
  ratePerSecond: number;
  errorRate: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  points: REDPoint[];
}

export interface REDResponse {
  start: string;
  end: string;
  /** a Go duration: "1m0s", "5m0s", "1h0m0s" */
  step: string;
  series: REDSeries[];
}

export interface Band {
  expected: number;
  low: number;
  high: number;
}

export interface Baseline {
  service: string;
  operation: string;
  kind: string;
  mode: string;
  fallback?: string;
  start: string;
  end: string;
  windows?: number;
  minutes: number;
  excludedMinutes?: number;
  calls: number;
  errors: number;
  sufficient: boolean;
  p50Ms: Band;
  p90Ms: Band;
  p99Ms: Band;
  errorRate: Band;
  ratePerSecond: Band;
}

export interface DetectStatus {
  evaluatedAt: string | null;
  error?: string;
}

export interface BaselinesResponse extends DetectStatus {
  baselines: Baseline[];
}

export interface AnomalyOperation {
  service: string;
  operation: string;
  kind: string;
  signal: string;
  measure: string;
  observed: number;
  expected: number;
  pValue: number;
  severity: number;
  calls: number;
  window: string;
  baseline: string;
  versions?: string[];
  start: string;
  active: boolean;
}

export interface Culprit {
  rank: number;
  service: string;
  operation: string;
  kind: string;
  version?: string;
  attribute?: string;
  score: number;
  selfTimeDeltaMs: number;
  errorOriginDelta: number;
  evidence: string[];
}

export interface Exemplar {
  traceID: string;
  spanID: string;
  service: string;
  operation: string;
  durationMs: number;
  error: boolean;
}

export interface Anomaly {
  id: string;
  status: string;
  start: string;
  end: string | null;
  detectedAt: string;
  updatedAt: string;
  severity: number;
  summary: string;
  signals: string[];
  operations: AnomalyOperation[];
  culprits: Culprit[];
  exemplars: Exemplar[];
  partial: boolean;
  notes: string[];
}

export interface AnomaliesResponse extends DetectStatus {
  start: string;
  end: string;
  anomalies: Anomaly[];
}

export interface NewPrev {
  new: number;
  previous: number;
}

export interface DeployOperation {
  operation: string;
  kind: string;
  calls: NewPrev;
  p50Ms: NewPrev;
  p90Ms: NewPrev;
  p99Ms: NewPrev;
  errorRate: NewPrev;
  latency: string;
  latencyPValue: number;
  errors: string;
  errorsPValue: number;
  verdict: string;
  sufficientData: boolean;
}

export interface DownstreamChange {
  operation: string;
  kind: string;
  change: string;
  perRequest: NewPrev;
  pValue: number;
}

export interface NewError {
  type: string;
  count: number;
  pValue: number;
}

export interface TimeWindow {
  start: string;
  end: string;
}

export interface Deploy {
  service: string;
  attribute: string;
  value: string;
  previous: string;
  firstSeen: string;
  comparison: string;
  window: TimeWindow;
  previousWindow: TimeWindow;
  evaluatedAt: string;
  verdict: string;
  confidence: number | null;
  pValue?: number;
  tests?: number;
  summary: string;
  calls: NewPrev;
  operations?: DeployOperation[];
  downstream?: DownstreamChange[];
  newErrors?: NewError[];
  evidence?: string[];
  source?: string;
}

export interface DeploysResponse extends DetectStatus {
  start: string;
  end: string;
  deploys: Deploy[];
}

export interface Finding {
  type: string;
  service: string;
  operation: string;
  detail?: string;
  spanIDs?: string[];
  excessMs: number;
  savingMs: number;
  count?: number;
  cohortCount?: number;
  valueMs?: number;
  baselineMs?: number;
  inCohort?: number;
  message: string;
}

export interface Explanation {
  traceID: string;
  rootService: string;
  rootOperation: string;
  start: string;
  durationMs: number;
  spans: number;
  cohort: { traces: number; start: string; end: string; p50Ms: number; p90Ms: number };
  excessMs: number;
  criticalPath: { service: string; operation: string; selfMs: number; cohortP50Ms?: number }[];
  findings: Finding[];
  partial: boolean;
  notes: string[];
}

export interface CriticalPathOp {
  service: string;
  operation: string;
  p50Ms: number;
  tailMs: number;
  p50Share: number;
  tailShare: number;
  presence: number;
}

export interface CriticalPathBand {
  quantile: number;
  samples: number;
  durationMs: number;
}

export interface AggregatedCriticalPath {
  service: string;
  operation: string;
  start: string;
  end: string;
  traces: number;
  matched: number;
  samples: number;
  p50: CriticalPathBand;
  tail: CriticalPathBand;
  operations: CriticalPathOp[];
  partial: boolean;
  notes: string[];
}

export interface RankedAttribute {
  key: string;
  value: string;
  missing?: boolean;
  selectionCount: number;
  baselineCount: number;
  selectionShare: number;
  baselineShare: number;
  diff: number;
  z: number;
  pValue: number;
}

export interface AttributeRanking {
  start: string;
  end: string;
  selection: { query: string; spans: number; traces: number };
  baseline: { query: string; spans: number; traces: number };
  tested: number;
  attributes: RankedAttribute[];
  skippedKeys: string[];
  partial: boolean;
  notes: string[];
}

export interface QualityIssue {
  type: string;
  count: number;
  of: number;
  rate: number;
  penalty: number;
  message: string;
  examples: string[];
  attributes?: Record<string, number>;
}

export interface ServiceQuality {
  service: string;
  score: number;
  spans: number;
  traces: number;
  versions: string[];
  issues: QualityIssue[];
}

export interface QualityReport {
  start: string;
  end: string;
  traces: number;
  spans: number;
  matched: number;
  services: ServiceQuality[];
  partial: boolean;
  notes: string[];
}
