package tempo

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxParamLen bounds every query parameter but q (which the parser bounds).
const maxParamLen = 4096

// maxTime is the last time in Unix nanoseconds that an int64 holds (in
// 2262).
var maxTime = time.Unix(0, math.MaxInt64)

// parseTime reads a point in time: RFC 3339, or a Unix time in seconds
// (possibly fractional), milliseconds, microseconds or nanoseconds, told
// apart by magnitude as Tempo and Grafana send seconds or nanoseconds. It
// must lie between 1970 and 2262, where times are Unix nanoseconds.
func parseTime(s string) (time.Time, error) {
	t, err := parseAnyTime(s)
	if err == nil && (t.Before(time.Unix(0, 0)) || t.After(maxTime)) {
		return t, fmt.Errorf("%q is out of range: want a time from 1970 to 2262", s)
	}
	return t, err
}

func parseAnyTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		switch {
		case n < 0:
		case n < 1e11:
			return time.Unix(n, 0), nil
		case n < 1e14:
			return time.UnixMilli(n), nil
		case n < 1e17:
			return time.UnixMicro(n), nil
		default:
			return time.Unix(0, n), nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < 1e11 {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 or Unix seconds or nanoseconds", s)
}

// parseDuration reads a Go duration ("1.5s", "250ms") or a number of
// seconds ("15", "0.5").
func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < 1e9 {
		return time.Duration(f * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("%q is not a duration: want a Go duration such as 15s or a number of seconds", s)
}

// timeRange reads start, end and since. Without end it is now; since
// sets start to end minus a duration; without either, start is
// defaultSpan before end (or unbounded when defaultSpan is 0, returned as
// the zero time).
func timeRange(v url.Values, now time.Time, defaultSpan time.Duration) (start, end time.Time, err error) {
	end = now
	if s := v.Get("end"); s != "" {
		if end, err = parseTime(s); err != nil {
			return start, end, fmt.Errorf("end: %w", err)
		}
	}
	switch {
	case v.Get("start") != "":
		if start, err = parseTime(v.Get("start")); err != nil {
			return start, end, fmt.Errorf("start: %w", err)
		}
	case v.Get("since") != "":
		d, err := parseDuration(v.Get("since"))
		if err != nil {
			return start, end, fmt.Errorf("since: %w", err)
		}
		start = end.Add(-d)
	case defaultSpan > 0:
		start = end.Add(-defaultSpan)
	}
	if !start.IsZero() && start.Before(time.Unix(0, 0)) {
		start = time.Unix(0, 0) // since or the default reached before 1970
	}
	if !start.IsZero() && !end.After(start) && !end.Equal(start) {
		return start, end, errors.New("end is before start")
	}
	return start, end, nil
}

// intParam reads an optional integer within [lo, hi], def when absent.
func intParam(v url.Values, name string, def, lo, hi int) (int, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo {
		return 0, fmt.Errorf("%s %q: want an integer of at least %d", name, s, lo)
	}
	return min(n, hi), nil
}

// checkLengths rejects over-long parameters other than q.
func checkLengths(v url.Values) error {
	for k, vs := range v {
		for _, s := range vs {
			if k != "q" && len(s) > maxParamLen {
				return fmt.Errorf("parameter %s is longer than %d bytes", k, maxParamLen)
			}
		}
	}
	return nil
}

// parseLogfmt reads Tempo's legacy tags parameter: space-separated
// key=value pairs, values optionally double-quoted with backslash
// escapes.
func parseLogfmt(s string) ([][2]string, error) {
	var out [][2]string
	i := 0
	for {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		j := i
		for j < len(s) && s[j] != '=' && s[j] != ' ' {
			j++
		}
		key := s[i:j]
		if key == "" {
			return nil, fmt.Errorf("tags: empty key at offset %d", i)
		}
		if j >= len(s) || s[j] != '=' {
			return nil, fmt.Errorf("tags: key %q has no value: want key=value", key)
		}
		j++
		var val string
		if j < len(s) && s[j] == '"' {
			var b strings.Builder
			k := j + 1
			for ; k < len(s) && s[k] != '"'; k++ {
				if s[k] == '\\' && k+1 < len(s) {
					k++
				}
				b.WriteByte(s[k])
			}
			if k >= len(s) {
				return nil, fmt.Errorf("tags: unterminated quote in the value of %q", key)
			}
			val, j = b.String(), k+1
		} else {
			k := j
			for k < len(s) && s[k] != ' ' {
				k++
			}
			val, j = s[j:k], k
		}
		out = append(out, [2]string{key, val})
		i = j
	}
}
