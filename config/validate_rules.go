package config

// Rules lists, in words, the semantic checks Build makes after parsing.
// docs/configuration.md shows them; each has a snippet test in
// validate_test.go recording keepalived 2.2.7's verdict.
var Rules = []struct {
	Severity Severity
	Rule     string
}{
	{Error, "A value outside its range or of the wrong form (`virtual_router_id \"51;\"`, `priority 0`, `advert_int 0`) is reported and the default kept."},
	{Error, "Unknown keywords, and keywords in the wrong block, are errors (keepalived's `Unknown keyword`)."},
	{Error, "vrrp_instance: virtual_router_id and interface are required (keepalived 2.2.7 -t wants an interface even for unicast, despite its man page); the interface must exist (Env.InterfaceExists) and not be `lo`."},
	{Warning, "With `dynamic_interfaces`, a missing interface is only a warning."},
	{Error, "Two instances may not share a VRID on one interface and address family, unless both are unicast with disjoint peers or use different multicast groups."},
	{Error, "Instance names must be unique; sync group members must exist and belong to one group only; a sync group needs two members."},
	{Error, "The first VIP decides the family; VIPs of the other family are dropped (use virtual_ipaddress_excluded). At least one VIP is needed."},
	{Error, "VRRPv2 advert_int must be whole seconds; VRRPv3 at most 40.95 s in steps of 0.01 s; `version 2` after an IPv6 VIP, or two different `version` lines, conflict."},
	{Info, "IPv6 instances always run VRRPv3; `state MASTER` without a priority makes the instance the address owner (priority 255)."},
	{Error, "auth_pass is at most 8 characters (truncated); auth_type PASS needs auth_pass; VRRPv3 and strict mode have no authentication."},
	{Error, "nopreempt is incompatible with state MASTER, priority 255 and preempt_delay."},
	{Error, "Strict mode: no authentication, no preempt_delay, no accept with VRRPv2, state MASTER only as address owner, the first IPv6 VIP link-local, no vmac_xmit_base."},
	{Error, "unicast_src_ip, mcast_src_ip, mcast_dst_ip and unicast peers must be of the instance's family; a unicast keyword without peers is an error."},
	{Error, "use_vmac with unicast peers needs vmac_xmit_base; vmac_xmit_base needs use_vmac; VMAC names have at most 15 characters."},
	{Error, "track_script/track_file/track_process must name a block defined earlier in the file; track_interface must exist and not be the instance's own interface; nothing may be tracked twice; track_bfd and BFD_CHECK must name a bfd_instance."},
	{Error, "The address owner (priority 255) and sync group members (without sync_group_tracking_weight) may not have weighted tracking."},
	{Error, "virtual_routes need `dev` unless `no_track`, and may not mix families; rules need a preference."},
	{Error, "Scripts: with scripts configured to run as root, enable_script_security is required (keepalived exits 6); with it and no script_user, keepalived_script must exist; script users and groups must exist (Env.UserExists, Env.GroupExists); a vrrp_script the host refuses (Env.CheckScript) is an error."},
	{Warning, "A notify, MISC_CHECK or quorum script the host refuses is only a warning (keepalived fails at run time)."},
	{Error, "global_defs: smtp_server must be an address or a name that resolves (Env.HostResolves); notification_email may not be empty; script_user must exist; values of ignored keywords are still range-checked (vrrp_priority -20..19, *_rt_priority 1..99, umask ≤ 0777, ...)."},
	{Error, "garp_group: a delay, existing interfaces, each interface in one group only (keepalived -t exits 5 or 2)."},
	{Error, "The contents of ignored blocks are checked too: linkbeat_interfaces and interface_up_down_delays existing interfaces, static track_group references a defined track_group."},
	{Error, "virtual_server: protocol, lb_algo and lb_kind are required (keepalived reports the defaults UDP, wlc, NAT as errors); a fwmark service takes no protocol."},
	{Error, "Real servers must be of the service's family and unique; DR/TUN real servers cannot change the port; fwmark services' real servers take no port; port 0 needs persistence."},
	{Error, "quorum may not exceed the sum of the real servers' weights; hysteresis must be below the quorum; a service needs real servers."},
	{Error, "ops needs UDP; sh-port/sh-fallback need the sh scheduler, mh-port/mh-fallback the mh scheduler."},
	{Error, "HTTP_GET/SSL_GET need a url with a path; status codes are 100..599 or ranges; digests are 32 hex digits; MISC_CHECK needs misc_path; FILE_CHECK needs a defined track_file."},
	{Error, "vigil-only: lb_kind TUN and auth_type AH are rejected (keepalived accepts them; config.IsUnsupported marks these); lb_kind FNAT needs laddr_group_name naming a local_address_group."},
	{Warning, "Things keepalived accepts silently but that are probably wrong: a duplicate virtual_server, vrrp_script or virtual_server_group, a virtual_server group that does not exist, real servers of another family than their group, unicast with strict mode, a duplicate unicast peer, strict mode's implied no_accept (the VIPs drop traffic unless priority 255)."},
	{Warning, "A NAT or FNAT virtual_server on a host that does not forward its family (`net.ipv4.ip_forward` or `net.ipv6.conf.all.forwarding` is 0; Env.Forwarding): every translated connection would be dropped. The daemon logs it at start and at every reload; `vigil doctor` reports it as VD703. A regex that Go's RE2 cannot compile (PCRE2 look-around, back-references) or regex_max_offset below regex_min_offset: that url's checks always fail."},
	{Warning, "`lvs_timeouts` beside a NAT or FNAT virtual_server: vigil applies it to how long a DR director remembers a flow; NAT and FNAT connections live in conntrack and follow the host's `net.netfilter.nf_conntrack_*` timeouts, not IPVS's."},
}
