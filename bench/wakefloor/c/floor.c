/* The C floor of bench/wakefloor: a deadline every 10 ms on a timerfd,
 * waited for in epoll_wait, read and re-armed, as keepalived's scheduler
 * does; nothing else. bench/footprint_conc.sh builds it with cc. */
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

int main(void)
{
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = tfd};
	struct itimerspec its = {.it_value = {.tv_nsec = 10000000}};
	if (tfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) < 0) {
		perror("wakefloor");
		return 1;
	}
	timerfd_settime(tfd, 0, &its, NULL);
	for (;;) {
		struct epoll_event out[8];
		uint64_t n;
		if (epoll_wait(ep, out, 8, -1) < 0)
			continue;
		if (read(tfd, &n, sizeof n) < 0)
			continue;
		timerfd_settime(tfd, 0, &its, NULL);
	}
}
