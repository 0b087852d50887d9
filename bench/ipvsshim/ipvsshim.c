/* bench/ipvsshim: an LD_PRELOAD library that lets keepalived's checker
 * process run on a kernel without IPVS, for bench/footprint.sh's
 * health-check rows (issue #7: vigil's CPU and RSS beside keepalived's
 * checker for the same checks).
 *
 * keepalived's checker process programs IPVS, and on a kernel without it
 * (no CONFIG_IP_VS, as on the machines these benchmarks run on) it exits
 * at start and takes keepalived down with it. Its health checks need
 * nothing of IPVS. This library answers the IPVS socket options
 * (IP_VS_SO_GET_* and IP_VS_SO_SET_* on an IPPROTO_IP socket, the ABI of
 * <linux/ip_vs.h>) the way a kernel with an empty IPVS table would, and
 * only when the kernel itself refused them with ENOPROTOOPT. Every other
 * call, and every call on a kernel with IPVS, goes to the C library as is.
 *
 * keepalived first looks for IPVS's generic netlink family, and falls back
 * to these socket options when the family does not exist. The checker
 * then runs its checks as it would, and what it would have written to
 * IPVS goes nowhere: the benchmark's keepalived does less kernel work
 * than one with IPVS, never more. Written from the kernel's UAPI header;
 * nothing here comes from keepalived.
 *
 *   cc -O2 -shared -fPIC -o ipvsshim.so ipvsshim.c -ldl
 *   LD_PRELOAD=$PWD/ipvsshim.so keepalived ...
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/ip_vs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int (*real_get)(int, int, int, void *, socklen_t *);
static int (*real_set)(int, int, int, const void *, socklen_t);

static int is_ipvs(int level, int opt)
{
	return level == IPPROTO_IP && opt >= IP_VS_BASE_CTL && opt <= IP_VS_BASE_CTL + 15;
}

int getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
	if (!real_get)
		real_get = dlsym(RTLD_NEXT, "getsockopt");
	int r = real_get(fd, level, opt, val, len);
	if (r == 0 || errno != ENOPROTOOPT || !is_ipvs(level, opt))
		return r;
	switch (opt) {
	case IP_VS_SO_GET_VERSION:
		snprintf(val, *len, "IP Virtual Server version %d.%d.%d (size=4096)",
			 IP_VS_VERSION_CODE >> 16, (IP_VS_VERSION_CODE >> 8) & 0xff, IP_VS_VERSION_CODE & 0xff);
		return 0;
	case IP_VS_SO_GET_INFO: {
		struct ip_vs_getinfo info = {.version = IP_VS_VERSION_CODE, .size = 4096};
		if (*len < sizeof info)
			break;
		memcpy(val, &info, sizeof info);
		return 0;
	}
	case IP_VS_SO_GET_TIMEOUT: {
		struct ip_vs_timeout_user t = {.tcp_timeout = 900, .tcp_fin_timeout = 120, .udp_timeout = 300};
		if (*len < sizeof t)
			break;
		memcpy(val, &t, sizeof t);
		return 0;
	}
	case IP_VS_SO_GET_SERVICE:
		errno = ESRCH;
		return -1;
	default:
		/* GET_SERVICES, GET_DESTS: an empty table; GET_DAEMON: no sync
		 * daemon running. */
		if (opt == IP_VS_SO_GET_SERVICES && *len >= sizeof(struct ip_vs_get_services)) {
			((struct ip_vs_get_services *)val)->num_services = 0;
			return 0;
		}
		if (opt == IP_VS_SO_GET_DESTS && *len >= sizeof(struct ip_vs_get_dests)) {
			((struct ip_vs_get_dests *)val)->num_dests = 0;
			return 0;
		}
		memset(val, 0, *len);
		return 0;
	}
	errno = EINVAL;
	return -1;
}

int setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
	if (!real_set)
		real_set = dlsym(RTLD_NEXT, "setsockopt");
	int r = real_set(fd, level, opt, val, len);
	if (r == 0 || errno != ENOPROTOOPT || !is_ipvs(level, opt))
		return r;
	return 0;
}
