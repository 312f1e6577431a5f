package webhook

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidDeliveryID holds the hand-written check to the pattern it
// replaces, at the edges of its length and alphabet.
func TestValidDeliveryID(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9._:-]{8,128}$`)
	ids := []string{
		"", "1234567", "12345678", strings.Repeat("a", 128), strings.Repeat("a", 129),
		"0f8fad5b-d9cb-469f-a165-70867728950e", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "delivery:42.x_y",
		"with space", "semi;colon", "slash/es1", "ünïcode-id", "tab\tbed-id", "newline\nid", "12345678\n",
	}
	for c := 0; c < 256; c++ {
		ids = append(ids, "prefix-"+string(rune(c)))
	}
	for _, id := range ids {
		if got, want := validDeliveryID(id), pattern.MatchString(id); got != want {
			t.Errorf("validDeliveryID(%q) = %v, want %v", id, got, want)
		}
	}
}
