package main

// Subcommands whose capability is still being built. Each says which issue
// brings it and exits non-zero.
var (
	cmdRun     = notBuilt("run", "VRRP daemon: issue #3")
	cmdStatus  = notBuilt("status", "control socket: issue #3")
	cmdConns   = notBuilt("conns", "load balancing data plane: issue #4")
	cmdDoctor  = notBuilt("doctor", "split-brain diagnosis: a later issue")
	cmdGenhash = notBuilt("genhash", "health checkers: issue #4")
)
