package fakesalt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// object is a JSON object that keeps its keys in order, as Python's dicts
// do: salt-api's answers list keys in insertion order, not sorted.
type object []field

type field struct {
	Key   string
	Value any
}

// MarshalJSON writes the fields in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.Key)
		if err != nil {
			return nil, err
		}
		v, err := marshal(f.Value)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", f.Key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// get returns the value of key.
func (o object) get(key string) (any, bool) {
	for _, f := range o {
		if f.Key == key {
			return f.Value, true
		}
	}
	return nil, false
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// pyJSON encodes v the way salt-api does (Python's json.dumps): ", " and
// ": " separators, non-ASCII characters escaped.
func pyJSON(v any) ([]byte, error) {
	b, err := marshal(v)
	if err != nil {
		return nil, err
	}
	return pythonize(b), nil
}

// mustPyJSON is pyJSON for values built by this package, which always encode.
func mustPyJSON(v any) []byte {
	b, err := pyJSON(v)
	if err != nil {
		panic(fmt.Sprintf("fakesalt: encode: %v", err))
	}
	return b
}

// pythonize rewrites compact JSON with Python's separators and ASCII escapes.
func pythonize(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/8)
	inString, escaped := false, false
	for i := 0; i < len(b); {
		c := b[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			case c >= utf8.RuneSelf:
				r, size := utf8.DecodeRune(b[i:])
				if r > 0xFFFF {
					r -= 0x10000
					out = fmt.Appendf(out, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
				} else {
					out = fmt.Appendf(out, `\u%04x`, r)
				}
				i += size
				continue
			}
			out = append(out, c)
			i++
			continue
		}
		out = append(out, c)
		switch c {
		case '"':
			inString = true
		case ',', ':':
			out = append(out, ' ')
		}
		i++
	}
	return out
}
