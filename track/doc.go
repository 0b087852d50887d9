// Package track implements keepalived's trackers for VRRP instances and sync
// groups (keepalived.conf(5): "VRRP script(s)", "Track files", "VRRP track
// processes", and track_interface / track_script / track_file /
// track_process in vrrp_instance and vrrp_sync_group), and the arithmetic
// that turns their results into what the VRRP engine needs: a priority
// delta, whether the instance must be in FAULT, and why (vrrp.Tracking).
//
// The package has two halves.
//
// The pure half is Aggregate, Results, ScriptState, QuorumState,
// ParseValue and Process.Matches: given the trackers an instance follows,
// with the weights that apply there, and each tracker's current result,
// Aggregate returns (delta, fault, reason). The rules are keepalived
// 2.2.7's; TestAggregateMatchesKeepalived runs keepalived in a lab
// namespace on 50 script, file and interface cases and checks that
// Aggregate agrees with the priority or FAULT it reports.
//
// The host half watches the trackers and reports changes as Events through
// a callback the daemon passes in; Tracker runs them all:
//
//   - ScriptRunner runs each vrrp_script every interval in its own process
//     group, kills the group on timeout (as keepalived does), always
//     reaps, and applies rise/fall and init_fail;
//   - FileWatcher reads each track_file when inotify says its directory
//     changed, once writes have settled, with init_file / overwrite at
//     start and a periodic re-read as a safety net;
//   - InterfaceWatcher follows link up/down, renames and deletion of named
//     interfaces through a netlink subscription in a namespace the caller
//     chooses;
//   - ProcessWatcher counts processes matching each vrrp_track_process by
//     scanning /proc periodically, with keepalived's matching rules,
//     quorum / quorum_max and fork_delay / terminate_delay.
//
// The daemon keeps one Results, applies every Event to it on its own
// loop, and recomputes Aggregate for the instances that follow the tracker
// the event names. Keeping Results across a reload (for trackers that
// still exist) avoids a flap while the new watchers report again.
//
// Every watcher is built by a constructor that starts nothing and runs in
// Run(ctx), which returns when ctx ends and leaves no goroutine or child
// process behind. Watchers report the first result of every tracker they
// own as soon as they know it (a vrrp_script after its first run, or at
// once with init_fail), so the daemon can compute a first Tracking.
package track
