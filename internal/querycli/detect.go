package querycli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clew-dev/clew/internal/api"
	"github.com/clew-dev/clew/internal/tlsconfig"
)

const anomaliesUsage = `Usage: clew anomalies [flags]

Lists the anomalies a running clew found (GET /api/v1/anomalies): what
changed, since when, how severe, the affected operations, the ranked
culprits and example traces.

Flags:
`

const deploysUsage = `Usage: clew deploys [flags]

Lists the deployments a running clew saw (GET /api/v1/deploys): each new
service.version or deployment.* value compared with the previous one, with
a verdict (regressed, improved, no_change, insufficient_data) and its
evidence.

Flags:
`

// cliOptions are the flags clew anomalies and clew deploys share.
type cliOptions struct {
	base    string
	since   string
	output  string
	timeout time.Duration
	client  *http.Client
}

func parseCLI(name, usage string, args []string, stderr io.Writer) (*cliOptions, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", DefaultAddr, "clew query address (its --http-addr)")
	since := fs.String("since", "1h", "list what happened in this last `duration`")
	output := fs.String("o", "text", "output: text (a report) or json (the server's answer)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up waiting for the answer after this long")
	var conn tlsconfig.ClientFlags
	conn.Register(fs, true)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%s takes no arguments, got %q (clew %s -h)", name, fs.Args(), name)
	}
	if *output != "text" && *output != "json" {
		return nil, fmt.Errorf("-o %q: want text or json", *output)
	}
	if d, err := time.ParseDuration(*since); err != nil || d <= 0 {
		return nil, fmt.Errorf("--since %q: want a positive duration such as 15m or 24h", *since)
	}
	if *timeout <= 0 {
		return nil, fmt.Errorf("--timeout %s: want a positive duration", *timeout)
	}
	a := strings.TrimRight(*addr, "/")
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--addr %q: want a URL such as %s", *addr, DefaultAddr)
	}
	client, err := newHTTPClient(&conn)
	if err != nil {
		return nil, err
	}
	return &cliOptions{base: withScheme(&conn, a), since: *since, output: *output, timeout: *timeout, client: client}, nil
}

// fetch gets path from the server; a non-2xx answer becomes an error with
// the server's message.
func (o *cliOptions) fetch(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.base+path+"?since="+url.QueryEscape(o.since), nil)
	if err != nil {
		return nil, err
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask clew at %s: %w (is it running? --addr)", o.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s: %w", o.base, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("clew answered %d: %s", resp.StatusCode, e.Error)
		}
		return nil, fmt.Errorf("clew answered %d for %s", resp.StatusCode, path)
	}
	return body, nil
}

func printJSON(w io.Writer, body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		return fmt.Errorf("the answer is not JSON: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// AnomaliesMain runs `clew anomalies` with the arguments after the
// subcommand name. It returns flag.ErrHelp after -h.
func AnomaliesMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseCLI("anomalies", anomaliesUsage, args, stderr)
	if err != nil {
		return err
	}
	body, err := o.fetch(ctx, "/api/v1/anomalies")
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(stdout, body)
	}
	var r api.AnomaliesResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("decode the answer: %w", err)
	}
	return writeAnomalies(stdout, &r, o.since)
}

// DeploysMain runs `clew deploys` with the arguments after the subcommand
// name. It returns flag.ErrHelp after -h.
func DeploysMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseCLI("deploys", deploysUsage, args, stderr)
	if err != nil {
		return err
	}
	body, err := o.fetch(ctx, "/api/v1/deploys")
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(stdout, body)
	}
	var r api.DeploysResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("decode the answer: %w", err)
	}
	return writeDeploys(stdout, &r, o.since)
}

func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

func writeAnomalies(w io.Writer, r *api.AnomaliesResponse, since string) error {
	var b strings.Builder
	if r.Error != "" {
		fmt.Fprintf(&b, "warning: the last evaluation failed: %s\n", r.Error)
	}
	if len(r.Anomalies) == 0 {
		fmt.Fprintf(&b, "no anomalies in the last %s", since)
		if r.EvaluatedAt != nil {
			fmt.Fprintf(&b, " (last evaluated %s)", clock(*r.EvaluatedAt))
		}
		b.WriteString("\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	for i, a := range r.Anomalies {
		if i > 0 {
			b.WriteString("\n")
		}
		end := "ongoing"
		if a.End != nil {
			end = "until " + clock(*a.End)
		}
		fmt.Fprintf(&b, "%s  %s  since %s, %s (detected %s)  severity %.0f  %s\n", a.ID, strings.ToUpper(a.Status), clock(a.Start), end,
			clock(a.DetectedAt), a.Severity, strings.Join(a.Signals, ", "))
		b.WriteString("  affected:\n")
		tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
		for _, s := range a.Operations {
			ver := ""
			if len(s.Versions) > 0 {
				ver = " version " + strings.Join(s.Versions, ",")
			}
			fmt.Fprintf(tw, "    %s\t%s (%s)%s\t%s\t%s %g, expected %g\tp=%.2g\n", s.Service, s.Operation, s.Kind, ver, s.Signal, s.Measure, s.Observed, s.Expected, s.PValue)
		}
		_ = tw.Flush()
		b.WriteString("  culprits:\n")
		if len(a.Culprits) == 0 {
			b.WriteString("    (not ranked yet)\n")
		}
		for _, c := range a.Culprits {
			extra := ""
			if c.Version != "" {
				extra += " version " + c.Version
			}
			if c.Attribute != "" {
				extra += " where " + c.Attribute
			}
			fmt.Fprintf(&b, "    %d. %s %s (%s)%s  score %.2f\n", c.Rank, c.Service, c.Operation, c.Kind, extra, c.Score)
			for _, e := range c.Evidence {
				fmt.Fprintf(&b, "       - %s\n", e)
			}
		}
		if len(a.Exemplars) > 0 {
			b.WriteString("  example traces:\n")
			for _, x := range a.Exemplars[:min(5, len(a.Exemplars))] {
				errS := ""
				if x.Error {
					errS = " error"
				}
				fmt.Fprintf(&b, "    %s  %s %s %.1fms%s\n", x.TraceID, x.Service, x.Operation, x.DurationMs, errS)
			}
		}
		if a.Partial {
			fmt.Fprintf(&b, "  partial: %s\n", strings.Join(a.Notes, "; "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeDeploys(w io.Writer, r *api.DeploysResponse, since string) error {
	var b strings.Builder
	if r.Error != "" {
		fmt.Fprintf(&b, "warning: the last evaluation failed: %s\n", r.Error)
	}
	if len(r.Deploys) == 0 {
		fmt.Fprintf(&b, "no deployments in the last %s\n", since)
		_, err := io.WriteString(w, b.String())
		return err
	}
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tATTRIBUTE\tVALUE\tPREVIOUS\tFIRST SEEN\tCOMPARISON\tCALLS\tVERDICT\tCONFIDENCE")
	for _, x := range r.Deploys {
		conf := "-"
		if x.Confidence != nil {
			conf = fmt.Sprintf("%.4f", *x.Confidence)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.0f/%.0f\t%s\t%s\n", x.Service, x.Attribute, x.Value, x.Previous, clock(x.FirstSeen),
			x.Comparison, x.Calls.New, x.Calls.Previous, x.Verdict, conf)
	}
	_ = tw.Flush()
	for _, x := range r.Deploys {
		if len(x.Evidence) == 0 && len(x.Downstream) == 0 && len(x.NewErrors) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s %s=%s vs %s: %s\n", x.Service, x.Attribute, x.Value, x.Previous, x.Verdict)
		for _, e := range x.Evidence {
			fmt.Fprintf(&b, "  - %s\n", e)
		}
		for _, c := range x.Downstream {
			fmt.Fprintf(&b, "  downstream %s %s: %.2f per request vs %.2f\n", c.Change, c.Operation, c.PerRequest.New, c.PerRequest.Previous)
		}
		for _, e := range x.NewErrors {
			fmt.Fprintf(&b, "  new error (%d): %s\n", e.Count, e.Type)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
