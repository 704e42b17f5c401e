package querycli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/clew-dev/clew/internal/api"
	"github.com/clew-dev/clew/internal/tlsconfig"
)

const explainUsage = `Usage: clew explain [flags] <trace-id>

Explains why a trace is slow: it asks a running clew
(GET /api/v1/explain/{traceID}) to compare the trace with recent traces of
the same root operation (its cohort) and prints the findings, ranked by the
time they cost beyond the cohort: operations slower than usual on the
critical path, N+1 patterns, serialized calls, retries, and operations new,
missing or repeated. Flags may come before or after the trace ID.

Examples:
  clew explain 4bf92f3577b34da6a3ce929d0e0e4736
  clew explain --since 1h -o json 4bf92f3577b34da6a3ce929d0e0e4736 | jq .findings

Flags:
`

// ExplainMain runs `clew explain` with the arguments after the subcommand
// name, printing the report to stdout and diagnostics to stderr. It returns
// flag.ErrHelp after -h, and otherwise an error meant for the user as it is.
func ExplainMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, explainUsage)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", DefaultAddr, "clew query address (its --http-addr)")
	output := fs.String("o", "text", "output: text (a report) or json (the server's answer)")
	since := fs.String("since", "", "take the cohort from this long before now (default: the server's, 24h)")
	cohort := fs.Int("cohort", 0, "the number of cohort traces (default: the server's, 50)")
	timeout := fs.Duration("timeout", time.Minute, "give up waiting for the answer after this long")
	var conn tlsconfig.ClientFlags
	conn.Register(fs, true)
	var positional []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	switch {
	case len(positional) == 0:
		return errors.New("missing the trace ID, as in: clew explain 4bf92f3577b34da6a3ce929d0e0e4736 (clew explain -h)")
	case len(positional) > 1:
		return fmt.Errorf("want one trace ID, got %d arguments", len(positional))
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("-o %q: want text or json", *output)
	}
	if *timeout <= 0 {
		return fmt.Errorf("--timeout %s: want a positive duration", *timeout)
	}
	client, err := newHTTPClient(&conn)
	if err != nil {
		return err
	}
	base, err := url.Parse(withScheme(&conn, strings.TrimRight(*addr, "/")))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("--addr %q: want a URL such as %s", *addr, DefaultAddr)
	}
	params := url.Values{}
	if *since != "" {
		params.Set("since", *since)
	}
	if *cohort > 0 {
		params.Set("cohort", fmt.Sprint(*cohort))
	}
	u := base.String() + "/api/v1/explain/" + url.PathEscape(positional[0])
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	body, err := fetchExplanation(ctx, client, u, base.String(), *timeout)
	if err != nil {
		return err
	}
	if *output == "json" {
		var buf bytes.Buffer
		if err := json.Indent(&buf, body, "", "  "); err != nil {
			return fmt.Errorf("the answer from %s is not JSON: %w", base, err)
		}
		_, err := stdout.Write(append(buf.Bytes(), '\n'))
		return err
	}
	var e api.ExplainResponse
	if err := json.Unmarshal(body, &e); err != nil {
		return fmt.Errorf("the answer from %s is not an explanation: %w", base, err)
	}
	return WriteExplanation(stdout, &e)
}

// fetchExplanation gets the explanation at u; addr names the server in
// messages.
func fetchExplanation(ctx context.Context, client *http.Client, u, addr string, timeout time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "clew-explain")
	resp, err := client.Do(req)
	if err != nil {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return nil, fmt.Errorf("no answer from %s within %s: raise --timeout", addr, timeout)
		case errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("connection refused: is clew running at %s?", addr)
		}
		return nil, fmt.Errorf("ask %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("read the answer from %s: %w", addr, err)
	}
	if len(body) > maxAnswer {
		return nil, fmt.Errorf("the answer from %s is over %d MiB", addr, maxAnswer>>20)
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
			return nil, fmt.Errorf("%s (HTTP %d)", eb.Error, resp.StatusCode)
		}
		msg := strings.TrimSpace(string(body))
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		return nil, fmt.Errorf("%s answered %s: %s", addr, resp.Status, msg)
	}
	return body, nil
}

// WriteExplanation prints an explanation as a report for people.
func WriteExplanation(w io.Writer, e *api.ExplainResponse) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Trace %s: %s %q\n", e.TraceID, e.RootService, e.RootOperation)
	fmt.Fprintf(&b, "  %s, %d spans, started %s\n", fmtMs(e.DurationMs), e.Spans, e.Start)
	if e.Cohort.Traces > 0 && e.Cohort.P50Ms > 0 {
		fmt.Fprintf(&b, "  cohort: %d similar traces from %s to %s, median %s, p90 %s", e.Cohort.Traces, e.Cohort.Start, e.Cohort.End,
			fmtMs(e.Cohort.P50Ms), fmtMs(e.Cohort.P90Ms))
		if e.ExcessMs > 0 {
			fmt.Fprintf(&b, ": %s over the median (%.1fx)", fmtMs(e.ExcessMs), e.DurationMs/e.Cohort.P50Ms)
		} else {
			b.WriteString(": not slower than the median")
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(&b, "  cohort: %d similar traces, too few to compare with\n", e.Cohort.Traces)
	}
	b.WriteString("\n")
	if len(e.Findings) == 0 {
		if e.Cohort.Traces > 0 && e.Cohort.P50Ms > 0 {
			b.WriteString("No finding: nothing in this trace stands out against its cohort.\n")
		} else {
			b.WriteString("No finding.\n")
		}
	} else {
		b.WriteString("Findings, by time beyond the cohort:\n")
		for i, f := range e.Findings {
			fmt.Fprintf(&b, "%3d. %-20s %s %q", i+1, f.Type, f.Service, f.Operation)
			if f.ExcessMs > 0 {
				fmt.Fprintf(&b, "  +%s", fmtMs(f.ExcessMs))
			}
			if f.SavingMs > 0 && f.SavingMs != f.ExcessMs {
				fmt.Fprintf(&b, "  (costs %s)", fmtMs(f.SavingMs))
			}
			b.WriteString("\n")
			fmt.Fprintf(&b, "     %s\n", f.Message)
			if len(f.SpanIDs) > 0 {
				ids := f.SpanIDs
				more := ""
				if len(ids) > 4 {
					more = fmt.Sprintf(" (+%d more)", len(ids)-4)
					ids = ids[:4]
				}
				fmt.Fprintf(&b, "     spans: %s%s\n", strings.Join(ids, ", "), more)
			}
		}
	}
	if len(e.CriticalPath) > 0 {
		b.WriteString("\nCritical path, self time per operation")
		if e.CriticalPath[0].CohortP50Ms != nil {
			b.WriteString(" (cohort median)")
		}
		b.WriteString(":\n")
		width := 0
		for _, p := range e.CriticalPath {
			width = max(width, len(p.Service)+len(p.Operation)+1)
		}
		width = min(width, 70)
		for _, p := range e.CriticalPath {
			name := p.Service + " " + p.Operation
			if len(name) > width {
				name = name[:width-1] + "…"
			}
			fmt.Fprintf(&b, "  %-*s %10s", width, name, fmtMs(p.SelfMs))
			if p.CohortP50Ms != nil {
				fmt.Fprintf(&b, "  (%s)", fmtMs(*p.CohortP50Ms))
			}
			b.WriteString("\n")
		}
	}
	if len(e.Notes) > 0 || e.Partial {
		b.WriteString("\n")
		if e.Partial {
			b.WriteString("Partial answer.\n")
		}
		for _, n := range e.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtMs(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
