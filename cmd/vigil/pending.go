package main

// Subcommands whose capability is still being built. Each says which issue
// brings it and exits non-zero.
var cmdDoctor = notBuilt("doctor", "split-brain diagnosis: being built")
