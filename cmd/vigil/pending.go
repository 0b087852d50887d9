package main

// Subcommands whose capability is still being built. Each says which issue
// brings it and exits non-zero.
var (
	cmdConns  = notBuilt("conns", "load balancing data plane: issue #4")
	cmdDoctor = notBuilt("doctor", "split-brain diagnosis: a later issue")
)
