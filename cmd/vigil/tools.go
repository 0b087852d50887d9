package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// ToolsInstalled is where the package installs vigil-tools, the binary
// that runs `vigil doctor` and `vigil demo`.
const ToolsInstalled = "/usr/lib/vigil/vigil-tools"

// ExeEnv names the environment variable through which vigil-tools learns
// the vigil binary that executed it (`vigil demo` runs vigil daemons).
const ExeEnv = "VIGIL_EXE"

// cmdDoctor and cmdDemo execute vigil-tools: the daemon's binary does not
// link doctor and demo (cmd/vigil-tools).
func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execTools("doctor", args, stderr)
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execTools("demo", args, stderr)
}

// toolsPath is vigil-tools beside this binary (a build tree, the tests),
// else the installed one.
func toolsPath() (exe, tools string, err error) {
	exe, err = os.Executable()
	if err != nil {
		// No /proc (a chroot): the name it was run by.
		if exe, err = exec.LookPath(os.Args[0]); err != nil {
			exe = os.Args[0]
		}
	}
	if p := filepath.Join(filepath.Dir(exe), "vigil-tools"); isFile(p) {
		return exe, p, nil
	}
	if isFile(ToolsInstalled) {
		return exe, ToolsInstalled, nil
	}
	return exe, "", fmt.Errorf("vigil-tools is neither beside %s nor at %s (the vigil package installs it): %w", exe, ToolsInstalled, fs.ErrNotExist)
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// execTools replaces this process with `vigil-tools name args...`, so
// that its exit status, output and signals are the command's own.
func execTools(name string, args []string, stderr io.Writer) int {
	exe, tools, err := toolsPath()
	if err == nil {
		env := append(os.Environ(), ExeEnv+"="+exe)
		err = syscall.Exec(tools, append([]string{"vigil-tools", name}, args...), env)
	}
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "vigil %s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stderr, "vigil %s: run vigil-tools: %v\n", name, err)
	return 1
}
