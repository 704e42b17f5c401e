// Package httpapi is the HTTP plumbing every native JSON endpoint shares:
// writing JSON and the one error shape, the time parameters (one set of
// accepted formats, docs/api.md "Time parameters"), limits, and the query
// budget. It holds no routes of its own.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/clew-dev/clew/internal/storage"
)

// ErrorBody is the shape of every error answer: {"error": "..."}.
type ErrorBody struct {
	Error string `json:"error"`
}

// WriteJSON writes v as one line of JSON with status code; if v cannot be
// encoded the answer is a 500 with the encoding error.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorBody{Error: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// WriteError writes the error shape with status code.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, ErrorBody{Error: msg})
}

// StatusClientClosed is the status of an answer to a request whose client
// went away (nginx's 499).
const StatusClientClosed = 499

// TimeoutMsg is the message of a query that ran out of time.
const TimeoutMsg = "query timed out: narrow the time range or add conditions"

// QueryStatus maps the error of a query to the status and message every
// query API answers (each in its own error shape): a limit of the tenant
// (storage.ErrQueryRefused) is 400 with the limit named, a deadline 504
// with timeoutMsg (TimeoutMsg when empty), a cancelled request 499, and
// anything else 500, which the caller logs (internal says so). ctx is the
// request's: once it is done, the client has gone.
func QueryStatus(ctx context.Context, err error, timeoutMsg string) (code int, msg string, internal bool) {
	switch {
	case errors.Is(err, storage.ErrQueryRefused):
		return http.StatusBadRequest, err.Error(), false
	case errors.Is(err, context.DeadlineExceeded):
		if timeoutMsg == "" {
			timeoutMsg = TimeoutMsg
		}
		return http.StatusGatewayTimeout, timeoutMsg, false
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return StatusClientClosed, "request cancelled", false
	}
	return http.StatusInternalServerError, err.Error(), true
}

// WriteQueryError answers the error of a query with QueryStatus's status
// in the native error shape, logging a 500 on log (if not nil) with the
// request path.
func WriteQueryError(w http.ResponseWriter, r *http.Request, err error, timeoutMsg string, log *slog.Logger) {
	code, msg, internal := QueryStatus(r.Context(), err, timeoutMsg)
	if internal && log != nil {
		log.Error("query", "path", r.URL.Path, "err", err)
	}
	WriteError(w, code, msg)
}

// Budget bounds a query's context by timeout (none when timeout <= 0).
// The cancel function must be called.
func Budget(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, timeout)
}

// Epoch thresholds: an integer below secondsBelow is Unix seconds, below
// millisBelow milliseconds, below microsBelow microseconds, anything
// larger nanoseconds. 1e11 seconds is the year 5138; 1e11 milliseconds is
// 1973, so a time after 1973 in milliseconds is never read as seconds.
const (
	secondsBelow = 1e11
	millisBelow  = 1e14
	microsBelow  = 1e17
)

// ParseTime reads one time parameter: RFC 3339 (with or without fractional
// seconds), or a Unix time as a non-negative number whose magnitude tells
// its unit: an integer below 1e11 is seconds, below 1e14 milliseconds,
// below 1e17 microseconds, else nanoseconds; a number with a fraction is
// seconds (below 1e11). Times before 1970 are refused. The result is UTC.
func ParseTime(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		switch {
		case n < 0:
			return time.Time{}, fmt.Errorf("%q: negative time", s)
		case n < secondsBelow:
			return time.Unix(n, 0).UTC(), nil
		case n < millisBelow:
			return time.UnixMilli(n).UTC(), nil
		case n < microsBelow:
			return time.UnixMicro(n).UTC(), nil
		}
		return time.Unix(0, n).UTC(), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < secondsBelow {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time: write RFC 3339 or Unix seconds, milliseconds, microseconds or nanoseconds", s)
	}
	if t.Before(time.Unix(0, 0)) {
		return time.Time{}, fmt.Errorf("%q: before 1970", s)
	}
	return t.UTC(), nil
}

// ParseSince reads since, a positive Go duration.
func ParseSince(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("since %q: want a positive duration such as 15m or 24h", s)
	}
	return d, nil
}

// RangeOptions are an endpoint's defaults and bounds for ParseRange.
type RangeOptions struct {
	// Default is the window when neither start nor since is given.
	Default time.Duration
	// Max, if positive, is the longest window accepted.
	Max time.Duration
	// AllowEmpty accepts end equal to start (an empty window); otherwise
	// end must be after start.
	AllowEmpty bool
}

// Range is a request's time window.
type Range struct {
	Start, End time.Time
	// ExplicitEnd is set when the request gave end.
	ExplicitEnd bool
}

// StartNanos is Start in Unix nanoseconds (0 before 1970).
func (r Range) StartNanos() uint64 { return uint64(max(r.Start.UnixNano(), 0)) }

// EndNanos is End in Unix nanoseconds.
func (r Range) EndNanos() uint64 { return uint64(max(r.End.UnixNano(), 0)) }

// ParseRange reads the time parameters start, end (ParseTime) and since
// (ParseSince, before end): end defaults to now, start to since or
// o.Default before end; start and since together are refused, as are an
// end before start and a window longer than o.Max.
func ParseRange(v url.Values, now time.Time, o RangeOptions) (Range, error) {
	var r Range
	end := now
	if s := v.Get("end"); s != "" {
		t, err := ParseTime(s)
		if err != nil {
			return Range{}, fmt.Errorf("end: %w", err)
		}
		end, r.ExplicitEnd = t, true
	}
	start := end.Add(-o.Default)
	switch s, since := v.Get("start"), v.Get("since"); {
	case s != "" && since != "":
		return Range{}, errors.New("give start or since, not both")
	case s != "":
		t, err := ParseTime(s)
		if err != nil {
			return Range{}, fmt.Errorf("start: %w", err)
		}
		start = t
	case since != "":
		d, err := ParseSince(since)
		if err != nil {
			return Range{}, err
		}
		start = end.Add(-d)
	}
	switch {
	case o.AllowEmpty && end.Before(start):
		return Range{}, errors.New("end is before start")
	case !o.AllowEmpty && !end.After(start):
		return Range{}, errors.New("end must be after start")
	case o.Max > 0 && end.Sub(start) > o.Max:
		return Range{}, fmt.Errorf("the time range is %s, longer than the %s allowed: narrow it", end.Sub(start), o.Max)
	}
	if start.Before(time.Unix(0, 0)) {
		start = time.Unix(0, 0)
	}
	r.Start, r.End = start.UTC(), end.UTC()
	return r, nil
}

// ParseLimit reads the integer parameter name, from 1 to max; def when
// absent.
func ParseLimit(v url.Values, name string, def, max int) (int, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("%s %q: want an integer from 1 to %d", name, s, max)
	}
	return n, nil
}

// CheckParamLen refuses any parameter value longer than max bytes.
func CheckParamLen(v url.Values, max int) error {
	for k, vals := range v {
		for _, s := range vals {
			if len(s) > max {
				return fmt.Errorf("parameter %s is longer than %d bytes", k, max)
			}
		}
	}
	return nil
}
