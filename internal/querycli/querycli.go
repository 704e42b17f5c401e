// Package querycli is `clew query`: it runs a TraceQL query against a
// running clew through the Tempo HTTP API that clew serves under /tempo on
// its query port (docs/api.md, "Tempo API"), and prints the matching traces,
// or the series of a metrics query, as a table or as the server's JSON.
//
// It is a client only: everything it knows about the server is the
// documented HTTP API, so it behaves exactly as Grafana does against the
// same clew. Every command takes the connection flags of
// internal/tlsconfig (--tls, --tls-ca-file, --token, --tenant, ...).
package querycli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/tlsconfig"
)

// DefaultAddr is the query address of a clew started with default flags.
const DefaultAddr = "http://127.0.0.1:3200"

// Output formats.
const (
	OutputTable = "table"
	OutputJSON  = "json"
)

// metricsQuery tells a metrics query from a search, as Grafana's Tempo
// datasource does: a pipeline stage that calls a metrics function. A query
// it misclassifies still gets a clear 400 from the server, which refuses
// metrics on the search endpoint and searches on the metrics endpoint.
var metricsQuery = regexp.MustCompile(`\|\s*(rate|count_over_time|min_over_time|max_over_time|avg_over_time|sum_over_time|quantile_over_time|histogram_over_time|compare)\s*\(`)

// options is a parsed and checked command line.
type options struct {
	// addr is the clew address as the user should read it in messages:
	// scheme, host and port, no trailing slash.
	addr string
	// base is the Tempo API root: addr plus /tempo.
	base    string
	query   string
	metrics bool
	output  string
	limit   int
	spss    int
	// start and end bound the query; both are always set.
	start, end time.Time
	// step is the metrics step; zero lets the server choose.
	step    time.Duration
	timeout time.Duration
	// client sends the requests (TLS, token, tenant).
	client *http.Client
}

// Main runs `clew query` with the arguments after the subcommand name,
// printing results to stdout and diagnostics to stderr. It returns
// flag.ErrHelp after -h, and otherwise an error whose message is meant for
// the user as it is (the server's message for a rejected query).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, args, stdout, stderr, time.Now(), time.Local)
}

// run is Main with the current time and the time zone of printed times
// given, so that tests are deterministic.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, now time.Time, loc *time.Location) error {
	o, err := parseArgs(args, stderr, now)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if o.metrics {
		return runMetrics(ctx, o, stdout, stderr, loc)
	}
	return runSearch(ctx, o, stdout, stderr, loc)
}

const usage = `Usage: clew query [flags] '<TraceQL>'

Runs a TraceQL query on a running clew (the Tempo API under /tempo on its
query port) and prints the matching traces, newest first, with their matched
spans. A metrics query, one whose pipeline calls rate(), count_over_time(),
quantile_over_time() or another metrics function, prints its series instead.
Flags may come before or after the query.

Examples:
  clew query '{ resource.service.name = "checkout" && status = error }'
  clew query --since 15m '{ span.http.response.status_code >= 500 } | rate() by (resource.service.name)'
  clew query -o json '{ duration > 1s }' | jq .

Flags:
`

// parseArgs reads the flags and the one query argument, which may sit
// before, between or after the flags ("--" ends the flags).
func parseArgs(args []string, stderr io.Writer, now time.Time) (*options, error) {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", DefaultAddr, "clew query address (its --http-addr); a URL ending in /tempo works too")
	output := fs.String("o", OutputTable, "output: table or json (the server's answer, pretty-printed)")
	limit := fs.Int("limit", 20, "search: the number of traces to return, newest first (the server caps it at 1000)")
	spss := fs.Int("spss", 3, "search: spans listed per matched spanset")
	since := fs.Duration("since", time.Hour, "query the last `duration` before --end (or now)")
	start := fs.String("start", "", "start of the range: RFC 3339 or Unix seconds (instead of --since)")
	end := fs.String("end", "", "end of the range: RFC 3339 or Unix seconds (default now)")
	step := fs.String("step", "", "metrics: the step between points, a duration (15s) or seconds (default: the server's choice, a hundredth of the range and at least 1s)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up waiting for the answer after this long")
	var conn tlsconfig.ClientFlags
	conn.Register(fs, true)

	var positional []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		if consumed := len(rest) - fs.NArg(); consumed > 0 && rest[consumed-1] == "--" {
			positional = append(positional, fs.Args()...)
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	o := &options{output: *output, limit: *limit, spss: *spss, timeout: *timeout}
	switch len(positional) {
	case 0:
		return nil, errors.New(`missing the TraceQL query, as in: clew query '{ resource.service.name = "checkout" }' (clew query -h)`)
	case 1:
	default:
		return nil, fmt.Errorf("want one TraceQL query, got %d arguments: quote the query as one argument", len(positional))
	}
	o.query = strings.TrimSpace(positional[0])
	if o.query == "" {
		return nil, errors.New("the TraceQL query is empty: use { } to match every span")
	}
	o.metrics = metricsQuery.MatchString(o.query)

	var err error
	if o.addr, o.base, err = parseAddr(*addr); err != nil {
		return nil, err
	}
	o.addr, o.base = withScheme(&conn, o.addr), withScheme(&conn, o.base)
	if o.client, err = newHTTPClient(&conn); err != nil {
		return nil, err
	}
	if o.output != OutputTable && o.output != OutputJSON {
		return nil, fmt.Errorf("-o %q: want table or json", o.output)
	}
	if o.limit < 1 {
		return nil, fmt.Errorf("--limit %d: want at least 1", o.limit)
	}
	if o.spss < 1 {
		return nil, fmt.Errorf("--spss %d: want at least 1", o.spss)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("--timeout %s: want a positive duration", o.timeout)
	}
	if o.metrics {
		for _, name := range []string{"limit", "spss"} {
			if set[name] {
				return nil, fmt.Errorf("--%s applies to searches, and this is a metrics query", name)
			}
		}
	} else if set["step"] {
		return nil, errors.New("--step applies to metrics queries (a pipeline ending in rate(), count_over_time(), ...), and this is a search")
	}
	if *step != "" {
		if o.step, err = parseStep(*step); err != nil {
			return nil, err
		}
	}

	o.end = now
	if *end != "" {
		if o.end, err = parseTime(*end); err != nil {
			return nil, fmt.Errorf("--end: %w", err)
		}
	}
	switch {
	case *start != "":
		if set["since"] {
			return nil, errors.New("give --since or --start, not both")
		}
		if o.start, err = parseTime(*start); err != nil {
			return nil, fmt.Errorf("--start: %w", err)
		}
	case *since <= 0:
		return nil, fmt.Errorf("--since %s: want a positive duration", *since)
	default:
		o.start = o.end.Add(-*since)
	}
	if !o.end.After(o.start) {
		return nil, fmt.Errorf("the range is empty: --end %s is not after --start %s", o.end.UTC().Format(time.RFC3339), o.start.UTC().Format(time.RFC3339))
	}
	return o, nil
}

// parseAddr turns --addr into the address shown in messages and the Tempo
// API root. A bare host:port gets http://; a trailing /tempo (Grafana's
// datasource URL) is accepted and not doubled.
func parseAddr(s string) (addr, base string, err error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("--addr %q: want http://HOST:PORT, the clew query address", s)
	}
	u.Path = strings.TrimSuffix(strings.TrimRight(u.Path, "/"), "/tempo")
	u.RawPath = ""
	addr = strings.TrimRight(u.String(), "/")
	return addr, addr + "/tempo", nil
}

// parseTime reads --start or --end: RFC 3339, or Unix seconds, possibly
// fractional.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < 1e11 {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2025-11-24T16:00:00Z) or Unix seconds", s)
}

// parseStep reads --step: a Go duration or a number of seconds.
func parseStep(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f > 1e9 {
			return 0, fmt.Errorf("--step %q: want a duration such as 15s or a number of seconds", s)
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d <= 0 {
		return 0, fmt.Errorf("--step %q: want a positive duration", s)
	}
	return d, nil
}

// rangeParams sets start and end as whole Unix seconds, the unit Tempo's
// API documents, widened outward so that the range covers what was asked.
func (o *options) rangeParams(v url.Values) {
	start := o.start.Unix()
	end := o.end.Unix()
	if o.end.Nanosecond() > 0 {
		end++
	}
	v.Set("start", strconv.FormatInt(start, 10))
	v.Set("end", strconv.FormatInt(end, 10))
}
