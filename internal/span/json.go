package span

import (
	"encoding/hex"
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendValueJSON appends v to dst as plain JSON: strings quoted, numbers
// and bools bare, bytes as a hex string, arrays as JSON arrays and maps as
// JSON objects. NaN and infinities, which JSON cannot carry, become strings.
func AppendValueJSON(dst []byte, v Value) []byte {
	switch v.Type {
	case TypeString:
		return AppendJSONString(dst, v.Str)
	case TypeBool:
		return strconv.AppendBool(dst, v.Bool())
	case TypeInt:
		return strconv.AppendInt(dst, v.Int(), 10)
	case TypeDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return AppendJSONString(dst, strconv.FormatFloat(f, 'g', -1, 64))
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64)
	case TypeBytes:
		dst = append(dst, '"')
		dst = hex.AppendEncode(dst, []byte(v.Str))
		return append(dst, '"')
	case TypeArray:
		dst = append(dst, '[')
		for i, e := range v.Array {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendValueJSON(dst, e)
		}
		return append(dst, ']')
	case TypeMap:
		dst = append(dst, '{')
		for i, kv := range v.Map {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSONString(dst, kv.Key)
			dst = append(dst, ':')
			dst = AppendValueJSON(dst, kv.Value)
		}
		return append(dst, '}')
	}
	return append(dst, "null"...)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a quoted JSON string. Invalid UTF-8 is
// replaced by U+FFFD so that the output is always valid JSON.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
