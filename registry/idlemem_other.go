//go:build !linux

package registry

// releaseStartupPages is a Linux-only saving (idlemem_linux.go).
func releaseStartupPages() error { return nil }
