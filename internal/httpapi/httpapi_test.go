package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	sec := want.Unix()
	cases := []struct {
		in   string
		want time.Time
		err  string
	}{
		{"2026-03-02T10:00:00Z", want, ""},
		{"2026-03-02T11:00:00+01:00", want, ""},
		{"2026-03-02T10:00:00.25Z", want.Add(250 * time.Millisecond), ""},
		{itoa(sec), want, ""},
		{itoa(sec) + ".5", want.Add(500 * time.Millisecond), ""},
		{itoa(sec * 1e3), want, ""},
		{itoa(sec*1e3 + 7), want.Add(7 * time.Millisecond), ""},
		{itoa(sec * 1e6), want, ""},
		{itoa(sec*1e9 + 3), want.Add(3), ""},
		{"0", time.Unix(0, 0).UTC(), ""},
		{"99999999999", time.Unix(99999999999, 0).UTC(), ""},
		{"100000000000", time.UnixMilli(1e11).UTC(), ""},
		{"-1", time.Time{}, "negative time"},
		{"1969-12-31T23:59:59Z", time.Time{}, "before 1970"},
		{"yesterday", time.Time{}, "is not a time"},
		{"NaN", time.Time{}, "is not a time"},
		{"1e300", time.Time{}, "is not a time"},
		{"", time.Time{}, "is not a time"},
	}
	for _, c := range cases {
		got, err := ParseTime(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseTime(%q) = %v, %v; want error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || !got.Equal(c.want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestParseRange(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		query      string
		o          RangeOptions
		start, end time.Time
		explicit   bool
		err        string
	}{
		{"", RangeOptions{Default: time.Hour}, now.Add(-time.Hour), now, false, ""},
		{"since=15m", RangeOptions{Default: time.Hour}, now.Add(-15 * time.Minute), now, false, ""},
		{"since=15m&end=2026-03-02T11:00:00Z", RangeOptions{Default: time.Hour}, now.Add(-75 * time.Minute), now.Add(-time.Hour), true, ""},
		{"start=2026-03-02T10:00:00Z", RangeOptions{Default: time.Hour}, now.Add(-2 * time.Hour), now, false, ""},
		{"start=1772445600000", RangeOptions{Default: time.Hour}, now.Add(-2 * time.Hour), now, false, ""},
		{"start=1&end=1", RangeOptions{AllowEmpty: true}, time.Unix(1, 0).UTC(), time.Unix(1, 0).UTC(), true, ""},
		{"since=1000000h", RangeOptions{}, time.Unix(0, 0).UTC(), now, false, ""},
		{"start=1&end=1", RangeOptions{}, time.Time{}, time.Time{}, false, "end must be after start"},
		{"start=2&end=1", RangeOptions{AllowEmpty: true}, time.Time{}, time.Time{}, false, "end is before start"},
		{"start=1&since=1h", RangeOptions{}, time.Time{}, time.Time{}, false, "not both"},
		{"since=-1h", RangeOptions{}, time.Time{}, time.Time{}, false, "positive duration"},
		{"since=yesterday", RangeOptions{}, time.Time{}, time.Time{}, false, "positive duration"},
		{"start=x", RangeOptions{}, time.Time{}, time.Time{}, false, "start: \"x\" is not a time"},
		{"end=x", RangeOptions{}, time.Time{}, time.Time{}, false, "end: \"x\" is not a time"},
		{"since=25h", RangeOptions{Max: 24 * time.Hour}, time.Time{}, time.Time{}, false, "longer than the 24h0m0s allowed"},
		{"since=24h", RangeOptions{Max: 24 * time.Hour}, now.Add(-24 * time.Hour), now, false, ""},
	}
	for _, c := range cases {
		v, _ := url.ParseQuery(c.query)
		r, err := ParseRange(v, now, c.o)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: got %+v, %v; want error with %q", c.query, r, err, c.err)
			}
			continue
		}
		if err != nil || !r.Start.Equal(c.start) || !r.End.Equal(c.end) || r.ExplicitEnd != c.explicit {
			t.Errorf("%q: got %+v, %v; want %v..%v explicit=%v", c.query, r, err, c.start, c.end, c.explicit)
		}
	}
}

func TestParseLimit(t *testing.T) {
	cases := []struct {
		query string
		want  int
		err   bool
	}{
		{"", 20, false}, {"limit=1", 1, false}, {"limit=100", 100, false},
		{"limit=0", 0, true}, {"limit=101", 0, true}, {"limit=x", 0, true}, {"limit=-3", 0, true},
	}
	for _, c := range cases {
		v, _ := url.ParseQuery(c.query)
		got, err := ParseLimit(v, "limit", 20, 100)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%q: got %d, %v", c.query, got, err)
		}
	}
	v := url.Values{"q": {strings.Repeat("a", 11)}}
	if err := CheckParamLen(v, 10); err == nil {
		t.Error("CheckParamLen accepted 11 bytes against 10")
	}
	if err := CheckParamLen(v, 11); err != nil {
		t.Error(err)
	}
}

func TestWrite(t *testing.T) {
	cases := []struct {
		name string
		err  error
		ctx  func() context.Context
		code int
		body string
	}{
		{"deadline", context.DeadlineExceeded, context.Background, 504, `{"error":"timed out"}`},
		{"cancelled", context.Canceled, context.Background, 499, `{"error":"request cancelled"}`},
		{"other", errors.New("boom"), context.Background, 500, `{"error":"boom"}`},
		{"gone", errors.New("boom"), func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, 499, `{"error":"request cancelled"}`},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		r := httptest.NewRequestWithContext(c.ctx(), "GET", "/x", nil)
		WriteQueryError(w, r, c.err, "timed out", nil)
		if w.Code != c.code || w.Body.String() != c.body+"\n" || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q", c.name, w.Code, w.Body.String())
		}
	}
	w := httptest.NewRecorder()
	WriteJSON(w, http.StatusOK, map[string]any{"bad": func() {}})
	if w.Code != 500 || !strings.Contains(w.Body.String(), "encode response") {
		t.Errorf("unencodable value: %d %q", w.Code, w.Body.String())
	}
	ctx, cancel := Budget(context.Background(), time.Millisecond)
	defer cancel()
	if _, ok := ctx.Deadline(); !ok {
		t.Error("Budget set no deadline")
	}
	ctx2, cancel2 := Budget(context.Background(), 0)
	defer cancel2()
	if _, ok := ctx2.Deadline(); ok {
		t.Error("Budget(0) set a deadline")
	}
}
