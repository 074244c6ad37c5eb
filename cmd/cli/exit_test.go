package cli

import (
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	plain := errors.New("boom")
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"plain error", plain, ExitFailure},
		{"with a code", withExitCode(ExitCannotRun, plain), ExitCannotRun},
		{"wrapped code", fmt.Errorf("doing x: %w", withExitCode(ExitCannotRun, plain)), ExitCannotRun},
		{"first code wins", withExitCode(ExitProblems, withExitCode(ExitCannotRun, plain)), ExitCannotRun},
		{"nil stays nil", withExitCode(ExitCannotRun, nil), ExitOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ExitCode(tc.err); got != tc.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
			}
			if tc.err != nil && tc.err.Error() != "boom" && !errors.Is(tc.err, plain) {
				t.Errorf("%v does not wrap the original error", tc.err)
			}
		})
	}
}

// TestExitCodesOfCommands: doctor's two failure kinds get distinct codes through the whole command tree; other
// commands keep exiting 1 on error.
func TestExitCodesOfCommands(t *testing.T) {
	kc := writeKubeconfig(t, fakeAPIServer(t))
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"doctor finds a problem", []string{"doctor", "web", "--kubeconfig", kc, "--offline"}, ExitProblems},
		{"doctor: pod does not exist", []string{"doctor", "no-such-pod", "--kubeconfig", kc, "--offline"}, ExitCannotRun},
		{"doctor: bad flag value", []string{"doctor", "-o", "yaml"}, ExitCannotRun},
		{"deploy: bad flag value", []string{"deploy", "--dry-run", "maybe", "--kubeconfig", kc}, ExitFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := NewRootCommand(IOStreams{In: nil, Out: &discard{}, ErrOut: &discard{}})
			root.SetArgs(tc.args)
			err := root.Execute()
			if got := ExitCode(err); got != tc.want {
				t.Errorf("exit code %d (err %v), want %d", got, err, tc.want)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
