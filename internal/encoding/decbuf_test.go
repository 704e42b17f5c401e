package encoding

import (
	"errors"
	"math"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var b []byte
	uvs := []uint64{0, 1, 127, 128, 300, 1<<32 - 1, 1 << 32, math.MaxUint64}
	vs := []int64{0, -1, 1, -64, 64, math.MinInt64, math.MaxInt64}
	for _, v := range uvs {
		b = AppendUvarint(b, v)
	}
	for _, v := range vs {
		b = AppendVarint(b, v)
	}
	b = AppendUint32(b, 0xdeadbeef)
	b = AppendUint64(b, 0x0102030405060708)
	b = AppendString(b, "héllo")
	b = AppendBytes(b, []byte{0, 1, 2})
	b = append(b, 7)

	d := NewDecbuf(b)
	for _, want := range uvs {
		if got := d.Uvarint(); got != want {
			t.Errorf("Uvarint = %d, want %d", got, want)
		}
	}
	for _, want := range vs {
		if got := d.Varint(); got != want {
			t.Errorf("Varint = %d, want %d", got, want)
		}
	}
	if got := d.Uint32(); got != 0xdeadbeef {
		t.Errorf("Uint32 = %#x", got)
	}
	if got := d.Uint64(); got != 0x0102030405060708 {
		t.Errorf("Uint64 = %#x", got)
	}
	if got := d.UvarintString(); got != "héllo" {
		t.Errorf("UvarintString = %q", got)
	}
	if got := d.UvarintBytes(); string(got) != "\x00\x01\x02" || cap(got) != 3 {
		t.Errorf("UvarintBytes = %v (cap %d)", got, cap(got))
	}
	if got := d.Byte(); got != 7 {
		t.Errorf("Byte = %d", got)
	}
	if d.Err() != nil || d.Len() != 0 || d.Offset() != len(b) {
		t.Errorf("after reads: err %v, len %d, offset %d of %d", d.Err(), d.Len(), d.Offset(), len(b))
	}
}

// TestEncodingIsStable pins the bytes of each encoder: the on-disk formats
// depend on them.
func TestEncodingIsStable(t *testing.T) {
	cases := []struct {
		name string
		got  []byte
		want string
	}{
		{"uvarint 0", AppendUvarint(nil, 0), "\x00"},
		{"uvarint 300", AppendUvarint(nil, 300), "\xac\x02"},
		{"uvarint max", AppendUvarint(nil, math.MaxUint64), "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"},
		{"varint -1", AppendVarint(nil, -1), "\x01"},
		{"varint 1", AppendVarint(nil, 1), "\x02"},
		{"varint -65", AppendVarint(nil, -65), "\x81\x01"},
		{"uint32", AppendUint32(nil, 0x01020304), "\x04\x03\x02\x01"},
		{"uint64", AppendUint64(nil, 1), "\x01\x00\x00\x00\x00\x00\x00\x00"},
		{"string", AppendString([]byte("x"), "ab"), "x\x02ab"},
	}
	for _, tc := range cases {
		if string(tc.got) != tc.want {
			t.Errorf("%s: % x, want % x", tc.name, tc.got, tc.want)
		}
	}
	// CRC32-C check value of "123456789", and of four zero bytes (what a
	// zero-filled log tail would hold).
	if got := CRC32C([]byte("123456789")); got != 0xe3069283 {
		t.Errorf("CRC32C = %#x", got)
	}
	if got := CRC32C(make([]byte, 4)); got != 0x48674bc7 {
		t.Errorf("CRC32C(zeros) = %#x", got)
	}
	if got := UpdateCRC32C(CRC32C([]byte("1234")), []byte("56789")); got != 0xe3069283 {
		t.Errorf("UpdateCRC32C = %#x", got)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name    string
		data    string
		read    func(d *Decbuf)
		cause   error
		what    string
		offset  int
		message string
	}{
		{"short uvarint", "\x05\x80", func(d *Decbuf) { d.Uvarint(); d.Uvarint() }, ErrShort, "uvarint", 1, "uvarint at byte 1: unexpected end of data"},
		{"long uvarint", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", func(d *Decbuf) { d.Uvarint() }, ErrVarint, "uvarint", 0, "uvarint at byte 0: malformed varint"},
		{"short byte", "", func(d *Decbuf) { d.Byte() }, ErrShort, "byte", 0, "byte at byte 0: unexpected end of data"},
		{"short uint32", "\x01\x02\x03\x04", func(d *Decbuf) { d.Byte(); d.Uint32() }, ErrShort, "uint32", 1, "uint32 at byte 1: unexpected end of data"},
		{"short uint64", "\x01\x02\x03", func(d *Decbuf) { d.Uint64() }, ErrShort, "uint64", 0, "uint64 at byte 0: unexpected end of data"},
		{"short bytes", "\x01\x02", func(d *Decbuf) { d.Bytes(3) }, ErrShort, "bytes", 0, "bytes at byte 0: unexpected end of data: 3 bytes wanted, 2 left"},
		{"negative bytes", "\x01", func(d *Decbuf) { d.Bytes(-1) }, ErrShort, "bytes", 0, "bytes at byte 0: unexpected end of data: -1 bytes wanted, 1 left"},
		{"string past end", "\x00\x05abc", func(d *Decbuf) { d.Byte(); d.UvarintString() }, ErrShort, "length-prefixed bytes", 1, "length-prefixed bytes at byte 1: unexpected end of data: length 5, 3 bytes left"},
		{"count too large", "\x03ab", func(d *Decbuf) { d.Count(1) }, ErrRange, "count", 0, "count at byte 0: value out of range: 3 items of at least 1 bytes in 2 bytes"},
		{"count of wide items", "\x02abc", func(d *Decbuf) { d.Count(2) }, ErrRange, "count", 0, "count at byte 0: value out of range: 2 items of at least 2 bytes in 3 bytes"},
		{"limit", "\x00\x0b", func(d *Decbuf) { d.Byte(); d.Limit(10) }, ErrRange, "uvarint", 1, "uvarint at byte 1: value out of range: 11 over the limit 10"},
		{"uvarint32", "\x80\x80\x80\x80\x10", func(d *Decbuf) { d.Uvarint32() }, ErrRange, "uvarint32", 0, "uvarint32 at byte 0: value out of range: 4294967296 does not fit in 32 bits"},
		{"caller's check", "\x01\x02", func(d *Decbuf) { d.Byte(); d.Fail(errors.New("bad kind")) }, nil, "", 1, "at byte 1: bad kind"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecbuf([]byte(tc.data))
			tc.read(&d)
			err := d.Err()
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("error %v does not wrap %v", err, tc.cause)
			}
			if de.What != tc.what || de.Offset != tc.offset || err.Error() != tc.message {
				t.Errorf("error = %q (what %q, offset %d), want %q (what %q, offset %d)", err, de.What, de.Offset, tc.message, tc.what, tc.offset)
			}
			if d.Offset() != tc.offset {
				t.Errorf("Offset() = %d, want %d", d.Offset(), tc.offset)
			}
			// The error sticks: later reads return zero and leave it alone.
			if d.Uvarint() != 0 || d.Byte() != 0 || d.Uint32() != 0 || d.Uint64() != 0 || d.Bytes(0) != nil || d.UvarintString() != "" || d.Count(1) != 0 || d.Len() != 0 || len(d.Rest()) != 0 {
				t.Error("a read after the failure returned data")
			}
			d.Fail(errors.New("later"))
			if d.Err() != err {
				t.Errorf("error changed to %v", d.Err())
			}
		})
	}
}

func TestBaseOffset(t *testing.T) {
	d := NewDecbufAt([]byte{1}, 100)
	if d.Byte(); d.Offset() != 101 {
		t.Errorf("Offset = %d, want 101", d.Offset())
	}
	d.Uint32()
	if err := d.Err(); err == nil || err.Error() != "uint32 at byte 101: unexpected end of data" {
		t.Errorf("error = %v", err)
	}
	d.Reset([]byte{2})
	if d.Err() != nil || d.Byte() != 2 || d.Offset() != 1 {
		t.Errorf("Reset: err %v, offset %d", d.Err(), d.Offset())
	}
	var zero Decbuf
	if zero.Uvarint(); zero.Err() == nil {
		t.Error("the zero Decbuf read a value")
	}
}
