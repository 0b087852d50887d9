// Package track implements keepalived's trackers for VRRP instances and sync
// groups (keepalived.conf(5): "VRRP script(s)", "Track files", "VRRP track
// processes", and track_interface / track_script / track_file /
// track_process in vrrp_instance and vrrp_sync_group), and the arithmetic
// that turns their results into what the VRRP engine needs: a priority
// delta, whether the instance must be in FAULT, and why (vrrp.Tracking).
//
// The package has two halves.
//
// The pure half is Aggregate, Results and ScriptState: given the trackers an
// instance follows, with the weights that apply there, and each tracker's
// current result, Aggregate returns (delta, fault, reason). The rules are
// keepalived 2.2.7's, checked by running it (see aggregate.go).
//
// The host half watches the trackers and reports changes as Events through
// a callback the daemon passes in:
//
//   - ScriptRunner runs each vrrp_script every interval in its own process
//     group, kills the group on timeout, always reaps, and applies
//     rise/fall and init_fail;
//   - FileWatcher reads each track_file when inotify says its directory
//     changed (so a file created, replaced by rename or deleted is seen),
//     with init_file / overwrite at start;
//   - InterfaceWatcher follows link up/down and deletion of named
//     interfaces through a netlink subscription in a namespace the caller
//     chooses;
//   - ProcessWatcher counts processes matching each vrrp_track_process by
//     scanning /proc periodically, with quorum / quorum_max and
//     fork_delay / terminate_delay.
//
// Every watcher is built by a constructor that starts nothing and runs in
// Run(ctx), which returns when ctx ends and leaves no goroutine or child
// process behind. Watchers report the initial result of every tracker they
// own as soon as they know it, so the daemon can compute a first Tracking.
package track
