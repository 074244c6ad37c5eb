package cli

import "errors"

// Process exit codes. Most commands exit ExitFailure on any error; commands that check something (doctor) tell
// "found a problem" (ExitProblems) apart from "could not check" (ExitCannotRun), as diff and grep do.
const (
	ExitOK        = 0
	ExitFailure   = 1
	ExitProblems  = 1
	ExitCannotRun = 2
)

// ExitCodeError is an error that asks for a particular process exit code. Commands return it (wrapped or not);
// main exits with ExitCode of whatever the command tree returned.
type ExitCodeError struct {
	Code int
	Err  error
}

func (e *ExitCodeError) Error() string { return e.Err.Error() }
func (e *ExitCodeError) Unwrap() error { return e.Err }

// withExitCode gives err the exit code code; nil stays nil, and an error that already carries a code keeps it.
func withExitCode(code int, err error) error {
	var ec *ExitCodeError
	if err == nil || errors.As(err, &ec) {
		return err
	}
	return &ExitCodeError{Code: code, Err: err}
}

// ExitCode is the process exit code for the error a command returned: ExitOK for nil, the Code of the first
// *ExitCodeError in its chain, ExitFailure otherwise.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ec *ExitCodeError
	if errors.As(err, &ec) {
		return ec.Code
	}
	return ExitFailure
}
