// Package hostenv is the real host behind config.Env: files, globs, the host
// name and interfaces of this machine, and keepalived's checks of the
// scripts a configuration runs (vrrp_script, notify*, MISC_CHECK), including
// what enable_script_security demands of them (keepalived.conf(5), global
// definitions).
package hostenv

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"vigil/config"
	"vigil/internal/inet"
)

// New returns the Env of this host. id is the config id given with -i (empty:
// the short host name applies). The answers about interfaces, scripts,
// users and groups are remembered for the life of the Env: a config with
// 10,000 instances asks about the same few interfaces and scripts 20,000
// times, and each uncached interface lookup is a netlink dump.
func New(id string) config.Env {
	var (
		mu      sync.Mutex
		ifaces  map[string]bool
		scripts = map[scriptKey]error{}
		users   = map[string]bool{}
		groups  = map[string]bool{}
	)
	return config.Env{
		ReadFile: ReadConfigFile,
		Stat:     os.Stat,
		Glob:     Glob,
		Hostname: ShortHostname(),
		ID:       id,
		InterfaceExists: func(name string) bool {
			mu.Lock()
			defer mu.Unlock()
			if ifaces == nil {
				ifaces = map[string]bool{}
				if all, err := net.Interfaces(); err == nil {
					for _, i := range all {
						ifaces[i.Name] = true
					}
				}
			}
			if ifaces[name] {
				return true
			}
			// Not in the snapshot: ask once more by name (an interface
			// created since, or an altname) and remember the answer.
			ok := InterfaceExists(name)
			ifaces[name] = ok
			return ok
		},
		CheckScript: func(path string, security bool) error {
			mu.Lock()
			defer mu.Unlock()
			k := scriptKey{path, security}
			if err, ok := scripts[k]; ok {
				return err
			}
			err := CheckScript(path, security)
			scripts[k] = err
			return err
		},
		UserExists:   memo(&mu, users, UserExists),
		GroupExists:  memo(&mu, groups, GroupExists),
		HostResolves: HostResolves,
		Forwarding:   Forwarding,
	}
}

// Forwarding reads whether this host (this network namespace) forwards
// packets of family f: net.ipv4.ip_forward, or net.ipv6.conf.all.forwarding.
func Forwarding(f inet.Family) (on, known bool) {
	path := "/proc/sys/net/ipv4/ip_forward"
	if f == inet.IPv6 {
		path = "/proc/sys/net/ipv6/conf/all/forwarding"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false, false
	}
	v := strings.TrimSpace(string(b))
	return v != "0", v != ""
}

type scriptKey struct {
	path     string
	security bool
}

func memo(mu *sync.Mutex, m map[string]bool, f func(string) bool) func(string) bool {
	return func(name string) bool {
		mu.Lock()
		defer mu.Unlock()
		if v, ok := m[name]; ok {
			return v
		}
		v := f(name)
		m[name] = v
		return v
	}
}

// ReadConfigFile reads a configuration file without ever blocking and
// without reading more than config.MaxFileSize bytes. It opens with
// O_NONBLOCK, so that a FIFO put in place of a checked file (or one that
// config's Stat check did not see) returns at once instead of waiting for
// a writer, and refuses anything but a regular file.
func ReadConfigFile(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%v)", name, fi.Mode().Type())
	}
	if fi.Size() > config.MaxFileSize {
		return nil, fmt.Errorf("%s is %d bytes: more than the %d bytes vigil reads of a configuration file", name, fi.Size(), config.MaxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, config.MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > config.MaxFileSize {
		return nil, fmt.Errorf("%s grew past the %d bytes vigil reads of a configuration file", name, config.MaxFileSize)
	}
	return data, nil
}

// Glob expands a shell glob and returns the matches sorted.
func Glob(pattern string) ([]string, error) {
	m, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("glob %q: %w", pattern, err)
	}
	sort.Strings(m)
	return m, nil
}

// ShortHostname returns the host name up to its first dot, keepalived's
// default config id for @ID lines; empty if it cannot be read.
func ShortHostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	short, _, _ := strings.Cut(h, ".")
	return short
}

// InterfaceExists reports whether this host (its network namespace) has an
// interface called name.
func InterfaceExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// CheckScript checks the program a script runs, as keepalived 2.2.7 does when
// it loads a configuration. path is the program (the first word of the
// script line): a name without a slash is looked up in PATH, anything else
// is taken relative to the working directory; symbolic links are resolved
// and the real file is checked. It must exist and be a regular file with an
// execute bit.
//
// With security (enable_script_security) the script is run as root, so
// nobody else may be able to change it: the file and every directory above
// it must be owned by root, not writable by others, and writable by their
// group only when that group is root. A directory with the sticky bit (like
// /tmp) is exempt from the write-bit rules, because there only its owner
// (root) can rename or delete what root owns in it. This is the rule
// keepalived applies, found by running `keepalived -t` on scripts with each
// of these modes and owners.
//
// Where vigil is stricter: keepalived accepts a file without any execute bit
// at load time (and the script then fails every time it runs); vigil
// reports it.
func CheckScript(path string, security bool) error {
	if path == "" {
		return errors.New("script: empty path")
	}
	resolved := path
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			return fmt.Errorf("script %s is not an executable file in PATH (%s); name it with its full path", path, os.Getenv("PATH"))
		}
		resolved = p
	}
	real, err := filepath.EvalSymlinks(resolved)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("script %s does not exist", path)
	}
	if err != nil {
		return fmt.Errorf("script %s: %w", path, err)
	}
	if real, err = filepath.Abs(real); err != nil {
		return fmt.Errorf("script %s: %w", path, err)
	}
	name := path
	if real != path {
		name = fmt.Sprintf("%s (resolves to %s)", path, real)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("script %s: %w", name, err)
	}
	switch {
	case fi.IsDir():
		return fmt.Errorf("script %s is a directory, not a program", name)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("script %s is not a regular file (%s)", name, fi.Mode().Type())
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("script %s is not executable (mode %s): chmod +x %s; it would fail at every run (%w)", name, modeString(fi), real, config.ErrScriptTolerated)
	}
	if !security {
		return nil
	}
	if err := secure(real, fi, true); err != nil {
		return fmt.Errorf("script %s %w", name, err)
	}
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("script %s: %w", name, err)
		}
		if err := secure(dir, di, false); err != nil {
			return fmt.Errorf("script %s: directory %s %w", name, dir, err)
		}
		if dir == "/" || dir == "." {
			return nil
		}
	}
}

const refuses = "with enable_script_security keepalived refuses it"

// secure reports, as the end of a sentence whose subject is p, what makes p
// changeable by someone other than root.
func secure(p string, fi fs.FileInfo, isFile bool) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("cannot be checked (no owner information); %s", refuses)
	}
	if st.Uid != 0 {
		return fmt.Errorf("is owned by %s not root; %s: chown root %s", userName(st.Uid), refuses, p)
	}
	if !isFile && fi.Mode()&fs.ModeSticky != 0 {
		// Only root can replace or rename root's entries in it.
		return nil
	}
	hint := ""
	if !isFile {
		hint = fmt.Sprintf(" (or chmod +t %s)", p)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("is writable by others (mode %s); %s: chmod o-w %s%s", modeString(fi), refuses, p, hint)
	}
	if fi.Mode().Perm()&0o020 != 0 && st.Gid != 0 {
		return fmt.Errorf("is writable by group %s (mode %s); %s: chmod g-w %s%s", groupName(st.Gid), modeString(fi), refuses, p, hint)
	}
	return nil
}

// modeString is the octal mode as chmod takes it, e.g. 0755 or 1777.
func modeString(fi fs.FileInfo) string {
	m := uint32(fi.Mode().Perm())
	if fi.Mode()&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return fmt.Sprintf("%04o", m)
}

func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return fmt.Sprintf("user %s, uid %s,", u.Username, id)
	}
	return "uid " + id + ","
}

func groupName(gid uint32) string {
	id := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(id); err == nil {
		return fmt.Sprintf("%s, gid %s", g.Name, id)
	}
	return "gid " + id
}

// UserExists reports whether a user name or numeric uid exists here, as
// keepalived needs for script_user and a script's user.
func UserExists(name string) bool {
	if _, err := user.Lookup(name); err == nil {
		return true
	}
	_, err := user.LookupId(name)
	return err == nil
}

// GroupExists reports whether a group name or numeric gid exists here.
func GroupExists(name string) bool {
	if _, err := user.LookupGroup(name); err == nil {
		return true
	}
	_, err := user.LookupGroupId(name)
	return err == nil
}

// HostResolves reports whether a host name (smtp_server) resolves.
func HostResolves(name string) bool {
	addrs, err := net.LookupHost(name)
	return err == nil && len(addrs) > 0
}
