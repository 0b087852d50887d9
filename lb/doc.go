// Package lb is vigil's pure load-balancing model: virtual services, their
// real servers and health, quorum and sorry server, schedulers and the
// Maglev lookup table, turned into a Desired data plane that
// dataplane/nft renders.
package lb
