//go:build !unix

package triage

import "io"

// mapFile maps nothing where there is no mmap: the input is read.
func mapFile(io.Reader, int) (blockSource, bool) { return nil, false }
