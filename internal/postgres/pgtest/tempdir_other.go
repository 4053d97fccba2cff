//go:build !linux

package pgtest

// memoryTempDir returns "": only Linux has a conventional memory-backed directory.
func memoryTempDir() string { return "" }
