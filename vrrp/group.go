package vrrp

import (
	"fmt"
	"time"
)

// Group is a vrrp_sync_group: instances that change state together, so
// that, say, the outside and inside VIPs of a router pair are always on the
// same router. See the package documentation for the rules.
//
// The members are stepped directly (Instance.Step, Instance.Advance); a
// step on one may change the others, so collect Ready from all of them
// after every step.
type Group struct {
	name     string
	members  []*Instance
	reported State
	pending  []Transition
}

// NewGroup ties members together. An instance belongs to at most one
// group. If a member is already MASTER (an address owner) the others
// follow it; if one is in FAULT the others go to FAULT.
func NewGroup(name string, members ...*Instance) (*Group, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("%w: sync group %q has no members", ErrConfig, name)
	}
	g := &Group{name: name, members: members}
	for _, m := range members {
		if m == nil {
			return nil, fmt.Errorf("%w: sync group %q: nil member", ErrConfig, name)
		}
		if m.group != nil {
			return nil, fmt.Errorf("%w: sync group %q: instance %q is already in sync group %q", ErrConfig, name, m.cfg.Name, m.group.name)
		}
	}
	seen := map[*Instance]bool{}
	for _, m := range members {
		if seen[m] {
			return nil, fmt.Errorf("%w: sync group %q: instance %q listed twice", ErrConfig, name, m.cfg.Name)
		}
		seen[m] = true
	}
	for _, m := range members {
		m.group = g
	}
	g.refresh(because{CauseSyncGroup, "joined sync group " + name})
	for _, m := range members {
		if m.state == StateMaster {
			g.follow(m, StateMaster)
			break
		}
	}
	g.reported = g.State()
	return g, nil
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Members returns the instances, in the order given to NewGroup.
func (g *Group) Members() []*Instance { return append([]*Instance(nil), g.members...) }

// State is FAULT if any member is, MASTER if all are, INIT if all are, and
// BACKUP otherwise.
func (g *Group) State() State {
	masters, inits := 0, 0
	for _, m := range g.members {
		switch m.state {
		case StateFault:
			return StateFault
		case StateMaster:
			masters++
		case StateInit:
			inits++
		}
	}
	switch len(g.members) {
	case masters:
		return StateMaster
	case inits:
		return StateInit
	}
	return StateBackup
}

// Ready returns the group's own transitions since the last call (for
// keepalived's "GROUP name STATE" notifications) and forgets them.
func (g *Group) Ready() []Transition {
	g.check()
	p := g.pending
	g.pending = nil
	return p
}

// check records a group transition if the members' states add up to a new
// group state.
func (g *Group) check() {
	s := g.State()
	if s == g.reported {
		return
	}
	var at time.Time
	for _, m := range g.members {
		if t := m.timeOf(m.now); t.After(at) {
			at = t
		}
	}
	g.pending = append(g.pending, Transition{At: at, From: g.reported, To: s, Cause: CauseSyncGroup, Reason: "members " + g.describe()})
	g.reported = s
}

func (g *Group) describe() string {
	s := ""
	for k, m := range g.members {
		if k > 0 {
			s += ","
		}
		s += m.cfg.Name + "=" + m.state.String()
	}
	return s
}

// refresh recomputes every member's group fault (another member has a
// fault of its own) and moves members into or out of FAULT.
func (g *Group) refresh(reason because) {
	var faulty *Instance
	for _, m := range g.members {
		if m.ownFault() && m.state != StateInit {
			faulty = m
			break
		}
	}
	for _, m := range g.members {
		m.groupFault = false
		for _, o := range g.members {
			if o != m && o.ownFault() && o.state != StateInit {
				m.groupFault = true
			}
		}
	}
	var master *Instance
	for _, m := range g.members {
		why := reason
		if !m.ownFault() && faulty != nil {
			why = because{CauseSyncGroup, fmt.Sprintf("sync group %s: %s in FAULT", g.name, faulty.cfg.Name)}
		}
		if m.settleFault(why) && m.state == StateMaster && master == nil {
			master = m
		}
	}
	if master != nil {
		g.follow(master, StateMaster)
	}
	g.check()
}

// settleFault moves i into FAULT while it has a cause of fault (its own or
// its sync group's), and out of it through startup once it has none; it
// reports whether i left FAULT. An instance in INIT stays there.
func (i *Instance) settleFault(reason because) (left bool) {
	switch {
	case i.state == StateInit:
	case i.faulty() && i.state != StateFault:
		i.becomeFault(reason)
	case !i.faulty() && i.state == StateFault:
		i.startup(reason, false)
		return true
	}
	return false
}

// allWantMaster reports whether every member other than m is MASTER or a
// BACKUP whose own Master_Down_Timer has expired.
func (g *Group) allWantMaster(m *Instance) bool {
	for _, o := range g.members {
		if o == m {
			continue
		}
		if o.state != StateMaster && (o.state != StateBackup || !o.wantMaster) {
			return false
		}
	}
	return true
}

// follow makes the other members join m, which has just become MASTER or
// left MASTER for BACKUP.
func (g *Group) follow(m *Instance, to State) {
	why := because{CauseSyncGroup, fmt.Sprintf("sync group %s: %s became %v", g.name, m.cfg.Name, to)}
	for _, o := range g.members {
		if o == m {
			continue
		}
		o.setNow(m.timeOf(m.now))
		switch {
		case to == StateMaster && o.state == StateBackup:
			o.becomeMaster(why)
		case to == StateBackup && o.state == StateMaster:
			o.becomeBackup(why)
		}
	}
	g.check()
}
