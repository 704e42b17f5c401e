package zipkin

import (
	"errors"
	"fmt"
	"net/netip"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// The messages of zipkin.proto (package zipkin.proto3), field by field:
//
//	message ListOfSpans { repeated Span spans = 1; }
//	message Span {
//	  bytes trace_id = 1; bytes parent_id = 2; bytes id = 3;
//	  Kind kind = 4;  // SPAN_KIND_UNSPECIFIED, CLIENT, SERVER, PRODUCER, CONSUMER
//	  string name = 5; fixed64 timestamp = 6; uint64 duration = 7;
//	  Endpoint local_endpoint = 8; Endpoint remote_endpoint = 9;
//	  repeated Annotation annotations = 10; map<string, string> tags = 11;
//	  bool debug = 12; bool shared = 13;
//	}
//	message Endpoint { string service_name = 1; bytes ipv4 = 2; bytes ipv6 = 3; int32 port = 4; }
//	message Annotation { fixed64 timestamp = 1; string value = 2; }

var protoKinds = [...]string{"", "CLIENT", "SERVER", "PRODUCER", "CONSUMER"}

// DecodeProto decodes a Zipkin proto3 ListOfSpans into b, applying lim.
// Unknown fields are skipped; a known field with the wrong wire type, a
// truncated message or an ID of the wrong length fails the whole request.
// A span with an all-zero trace_id or id is rejected alone (counted in the
// Result), and invalid UTF-8 in strings is replaced (otlp.CleanString), as
// on every clew receiver. An empty body is an empty list. Strings are
// copied: b does not alias data.
func DecodeProto(data []byte, lim otlp.Limits, b *span.Batch) (otlp.Result, error) {
	bl := newBuilder(lim, b)
	var z zspan
	idx := 0
	err := walk(data, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 {
			return nil
		}
		if typ != protowire.BytesType {
			return errors.New("ListOfSpans.spans: wrong wire type")
		}
		z.reset()
		if err := protoSpan(v, &z); err != nil {
			return fmt.Errorf("span %d: %w", idx, err)
		}
		if err := bl.add(&z, idx); err != nil {
			return err
		}
		idx++
		return nil
	})
	if err != nil {
		return bl.st, err
	}
	return bl.done(), nil
}

// walk calls f for each field of a message: v holds the bytes of a
// length-delimited field, x the value of a varint or fixed field. Groups are
// refused (zipkin.proto has none).
func walk(data []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return fmt.Errorf("malformed protobuf: %w", protowire.ParseError(n))
		}
		data = data[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(data)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(data)
		case protowire.Fixed32Type:
			var x32 uint32
			x32, n = protowire.ConsumeFixed32(data)
			x = uint64(x32)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(data)
		default:
			return fmt.Errorf("malformed protobuf: unexpected wire type %d (field %d)", typ, num)
		}
		if n < 0 {
			return fmt.Errorf("malformed protobuf: field %d: %w", num, protowire.ParseError(n))
		}
		data = data[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

func wantType(name string, got, want protowire.Type) error {
	if got != want {
		return fmt.Errorf("%s: wrong wire type %d", name, got)
	}
	return nil
}

func protoString(name string, typ protowire.Type, v []byte) (string, error) {
	if err := wantType(name, typ, protowire.BytesType); err != nil {
		return "", err
	}
	return string(v), nil // invalid UTF-8 is the builder's to repair
}

func protoSpan(data []byte, z *zspan) error {
	return walk(data, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case 1:
			if err = wantType("trace_id", typ, protowire.BytesType); err != nil {
				return err
			}
			switch len(v) {
			case 8:
				copy(z.traceID[8:], v)
			case 16:
				copy(z.traceID[:], v)
			default:
				return fmt.Errorf("trace_id: want 8 or 16 bytes, got %d", len(v))
			}
			z.hasTrace = true
		case 2:
			if err = wantType("parent_id", typ, protowire.BytesType); err != nil {
				return err
			}
			switch len(v) {
			case 0:
			case 8:
				copy(z.parentID[:], v)
			default:
				return fmt.Errorf("parent_id: want 8 bytes, got %d", len(v))
			}
		case 3:
			if err = wantType("id", typ, protowire.BytesType); err != nil {
				return err
			}
			if len(v) != 8 {
				return fmt.Errorf("id: want 8 bytes, got %d", len(v))
			}
			copy(z.id[:], v)
			z.hasID = true
		case 4:
			if err = wantType("kind", typ, protowire.VarintType); err != nil {
				return err
			}
			if x >= uint64(len(protoKinds)) {
				return fmt.Errorf("kind: unknown value %d", x)
			}
			z.kind = protoKinds[x]
		case 5:
			z.name, err = protoString("name", typ, v)
		case 6:
			err = wantType("timestamp", typ, protowire.Fixed64Type)
			z.timestamp = x
		case 7:
			err = wantType("duration", typ, protowire.VarintType)
			z.dur = x
		case 8:
			if err = wantType("local_endpoint", typ, protowire.BytesType); err == nil {
				z.hasLocal = true
				err = protoEndpoint(v, &z.local)
			}
		case 9:
			if err = wantType("remote_endpoint", typ, protowire.BytesType); err == nil {
				z.hasRemote = true
				err = protoEndpoint(v, &z.remote)
			}
		case 10:
			if err = wantType("annotations", typ, protowire.BytesType); err != nil {
				return err
			}
			var a annotation
			err = walk(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				switch num {
				case 1:
					a.timestamp = x
					return wantType("annotation timestamp", typ, protowire.Fixed64Type)
				case 2:
					var err error
					a.value, err = protoString("annotation value", typ, v)
					return err
				}
				return nil
			})
			z.annotations = append(z.annotations, a)
		case 11:
			if err = wantType("tags", typ, protowire.BytesType); err != nil {
				return err
			}
			var k, val string
			err = walk(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				var err error
				switch num {
				case 1:
					k, err = protoString("tag key", typ, v)
				case 2:
					val, err = protoString("tag value", typ, v)
				}
				return err
			})
			z.setTag(k, val)
		case 12:
			err = wantType("debug", typ, protowire.VarintType)
			z.debug = x != 0
		case 13:
			err = wantType("shared", typ, protowire.VarintType)
			z.shared = x != 0
		}
		return err
	})
}

func protoEndpoint(data []byte, e *endpoint) error {
	return walk(data, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case 1:
			e.serviceName, err = protoString("service_name", typ, v)
		case 2, 3:
			if err = wantType("ip address", typ, protowire.BytesType); err != nil {
				return err
			}
			if a, ok := netip.AddrFromSlice(v); ok {
				e.setIP(a)
			}
		case 4:
			err = wantType("port", typ, protowire.VarintType)
			e.port = int32(x)
		}
		return err
	})
}
