package encoding

import (
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzDecbuf runs a program of reads (chosen by ops) over arbitrary data
// and checks each against a plain reference decoder: same values, the
// failure at the same read with the offset where that read began, zeros
// after it, and never a panic or a read past the end.
func FuzzDecbuf(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8}, []byte("\x05\x80\x01abc"))
	f.Add([]byte{1, 1, 1}, []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Add([]byte{6, 7, 8, 9}, []byte("\x03ab\x02xy"))
	f.Add([]byte{4, 4, 0}, []byte{})
	f.Fuzz(func(t *testing.T, ops, data []byte) {
		d := NewDecbuf(data)
		pos := 0 // the reference decoder's position
		failed := false
		for step, op := range ops {
			start := pos
			var want, got uint64
			ok := true
			left := len(data) - pos
			if failed {
				left = -1 // the reference reads nothing more either
			}
			switch op % 10 {
			case 0:
				got = d.Uvarint()
				v, n := binary.Uvarint(data[pos:])
				if ok = n > 0 && !failed; ok {
					want = v
					pos += n
				}
			case 1:
				got = uint64(d.Varint())
				v, n := binary.Varint(data[pos:])
				if ok = n > 0 && !failed; ok {
					want = uint64(v)
					pos += n
				}
			case 2:
				got = uint64(d.Byte())
				if ok = left >= 1; ok {
					want = uint64(data[pos])
					pos++
				}
			case 3:
				got = uint64(d.Uint32())
				if ok = left >= 4; ok {
					want = uint64(binary.LittleEndian.Uint32(data[pos:]))
					pos += 4
				}
			case 4:
				got = d.Uint64()
				if ok = left >= 8; ok {
					want = binary.LittleEndian.Uint64(data[pos:])
					pos += 8
				}
			case 5:
				n := int(op / 10)
				b := d.Bytes(n)
				got = uint64(len(b))
				if ok = left >= n && n >= 0; ok {
					want = uint64(n)
					if string(b) != string(data[pos:pos+n]) {
						t.Fatalf("step %d: Bytes = %q, want %q", step, b, data[pos:pos+n])
					}
					pos += n
				}
			case 6, 7:
				s := d.UvarintString()
				got = uint64(len(s))
				v, n := binary.Uvarint(data[pos:])
				if ok = n > 0 && left >= n && v <= uint64(left-n); ok {
					want = v
					if s != string(data[pos+n:pos+n+int(v)]) {
						t.Fatalf("step %d: UvarintString = %q", step, s)
					}
					pos += n + int(v)
				}
			case 8:
				minSize := int(op/10) % 8
				got = uint64(d.Count(minSize))
				v, n := binary.Uvarint(data[pos:])
				if ok = n > 0 && left >= n && v <= uint64((left-n)/max(minSize, 1)); ok {
					want = v
					pos += n
				}
			case 9:
				limit := uint64(op) * 3
				got = d.Limit(limit)
				v, n := binary.Uvarint(data[pos:])
				if ok = n > 0 && !failed && v <= limit; ok {
					want = v
					pos += n
				}
			}
			if got != want {
				t.Fatalf("step %d (op %d): got %d, want %d", step, op, got, want)
			}
			if !ok && !failed {
				failed = true
				var de *DecodeError
				if err := d.Err(); !errors.As(err, &de) || de.Offset != start || d.Offset() != start {
					t.Fatalf("step %d (op %d): error %v, offset %d, want a *DecodeError at %d", step, op, err, d.Offset(), start)
				}
			}
			if (d.Err() != nil) != failed {
				t.Fatalf("step %d: Err() = %v, failed %v", step, d.Err(), failed)
			}
			if !failed && (d.Offset() != pos || d.Len() != len(data)-pos) {
				t.Fatalf("step %d: offset %d, len %d; want %d, %d", step, d.Offset(), d.Len(), pos, len(data)-pos)
			}
		}
	})
}
