package notify

import (
	"fmt"
	"os/user"
	"strconv"
)

// DefaultScriptUser is the user keepalived runs scripts as when script_user
// is not set, if it exists (else the user keepalived runs as).
const DefaultScriptUser = "keepalived_script"

// LookupCredential resolves `username [groupname]` as keepalived does for
// script_user and the user of a script: the group defaults to the user's
// primary group. Numeric ids are accepted. track.Credential has the same
// fields, so a value converts with track.Credential(c).
func LookupCredential(name, group string) (Credential, error) {
	u, err := byNameOrID(name, user.Lookup, user.LookupId)
	if err != nil {
		return Credential{}, fmt.Errorf("script user %q: %w", name, err)
	}
	gid := u.Gid
	if group != "" {
		g, err := byNameOrID(group, user.LookupGroup, user.LookupGroupId)
		if err != nil {
			return Credential{}, fmt.Errorf("script group %q: %w", group, err)
		}
		gid = g.Gid
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return Credential{}, fmt.Errorf("script user %q: uid %q: %w", name, u.Uid, err)
	}
	g, err := strconv.ParseUint(gid, 10, 32)
	if err != nil {
		return Credential{}, fmt.Errorf("script user %q: gid %q: %w", name, gid, err)
	}
	return Credential{UID: uint32(uid), GID: uint32(g)}, nil
}

// byNameOrID looks a user or group up by name and, when that fails and
// the name is a number, by id: keepalived accepts both.
func byNameOrID[T any](name string, byName, byID func(string) (T, error)) (T, error) {
	v, err := byName(name)
	if err != nil {
		if _, nerr := strconv.ParseUint(name, 10, 32); nerr == nil {
			v, err = byID(name)
		}
	}
	return v, err
}
