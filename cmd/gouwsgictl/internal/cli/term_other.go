//go:build !linux

package cli

import (
	"errors"
	"os"
)

// isTTY reports false: terminal handling is implemented for Linux only.
func isTTY(*os.File) bool { return false }

func cbreak(*os.File) (func(), error) {
	return nil, errors.New("terminal control is only supported on Linux")
}
