package querycli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/clew-dev/clew/internal/tlsconfig"
)

// maxAnswer bounds the body read from the server. A search of 1000 traces
// with many spans per spanset stays far below it.
const maxAnswer = 256 << 20

// maxMessage bounds the part of an error body quoted in a message.
const maxMessage = 2048

// newHTTPClient returns the client that sends the queries, with the TLS,
// token and tenant of the connection flags; the context bounds each query
// (--timeout).
func newHTTPClient(cf *tlsconfig.ClientFlags) (*http.Client, error) {
	if err := cf.Validate(); err != nil {
		return nil, err
	}
	rt, err := cf.Transport(nil)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: rt}, nil
}

// withScheme makes an http:// address https:// when TLS is on (--tls and
// the other --tls-* flags), so that --tls works with the default --addr.
func withScheme(cf *tlsconfig.ClientFlags, addr string) string {
	if rest, ok := strings.CutPrefix(addr, "http://"); ok && cf.Enabled() {
		return "https://" + rest
	}
	return addr
}

// get sends GET base+path?params and returns the body of a 200 answer.
// Every other outcome is an error worded for the user: the server's own
// message for a rejected query, a hint when nothing listens at the address.
func get(ctx context.Context, o *options, path string, params url.Values) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.base+path+"?"+params.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "clew-query")
	resp, err := o.client.Do(req)
	if err != nil {
		return nil, transportError(ctx, o, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, transportError(ctx, o, err)
	}
	if len(body) > maxAnswer {
		return nil, fmt.Errorf("the answer from %s is over %d MiB: lower --limit or --spss, or narrow the query", o.addr, maxAnswer>>20)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(o, path, resp, body)
	}
	return body, nil
}

// transportError explains a request that got no complete answer.
func transportError(ctx context.Context, o *options, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the method and URL only repeat the address
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer from %s within %s: raise --timeout or narrow the time range", o.addr, o.timeout)
	case ctx.Err() != nil:
		return fmt.Errorf("query cancelled: %w", ctx.Err())
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("connection refused: is clew running at %s?", o.addr)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("cannot resolve %q: is clew running at %s?", dnsErr.Name, o.addr)
	}
	return fmt.Errorf("query %s: %w", o.addr, err)
}

// statusError turns a non-200 answer into an error. clew's Tempo API
// answers errors in plain text; a 400 carries the reason, for a TraceQL
// error with the parser's line:col, under which the query is shown with a
// caret.
func statusError(o *options, path string, resp *http.Response, body []byte) error {
	msg := strings.TrimSpace(string(body))
	if !utf8.ValidString(msg) || strings.HasPrefix(msg, "<") {
		msg = "" // binary or an HTML page: not a message for the terminal
	}
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "..."
	}
	switch resp.StatusCode {
	case http.StatusBadRequest:
		if msg == "" {
			msg = "the server refused the query (400)"
		}
		return errors.New(msg + caret(o.query, msg))
	case http.StatusNotFound:
		return fmt.Errorf("%s answered 404 Not Found for %s: is this the query address of a clew (its --http-addr, default :3200)?", o.addr, strings.TrimPrefix(o.base, o.addr)+path)
	case http.StatusGatewayTimeout:
		if msg == "" {
			msg = "query timed out"
		}
		return fmt.Errorf("%s (the server's query timeout)", msg)
	}
	if msg == "" {
		return fmt.Errorf("%s answered %s", o.addr, resp.Status)
	}
	return fmt.Errorf("%s answered %s: %s", o.addr, resp.Status, msg)
}

// position finds the first "line:col: " of a TraceQL error message.
var position = regexp.MustCompile(`\b(\d+):(\d+): `)

// caret shows the query line a message points at, and a caret under the
// column (1-based, in code points), indented by two spaces; or nothing
// when the message has no position within the query.
func caret(query, msg string) string {
	m := position.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	lines := strings.Split(query, "\n")
	if line < 1 || line > len(lines) || col < 1 || col > utf8.RuneCountInString(lines[line-1])+1 {
		return ""
	}
	text := strings.TrimRight(lines[line-1], "\r")
	var pad strings.Builder
	for i, r := range []rune(text) {
		if i >= col-1 {
			break
		}
		if r == '\t' {
			pad.WriteByte('\t') // keeps the caret under the character
		} else {
			pad.WriteByte(' ')
		}
	}
	return "\n  " + text + "\n  " + pad.String() + "^"
}

// writeJSON pretty-prints a JSON answer as it is, keys in the server's
// order.
func writeJSON(w io.Writer, o *options, body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(body), "", "  "); err != nil {
		return notJSON(o, err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// notJSON reports an answer that could not be decoded.
func notJSON(o *options, err error) error {
	return fmt.Errorf("the answer from %s is not the JSON of clew's Tempo API (is %s a clew query address?): %w", o.addr, o.addr, err)
}
