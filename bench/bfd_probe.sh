#!/usr/bin/env bash
# How late a bare timerfd + epoll loop (keepalived's BFD child's shape,
# no Go runtime) wakes for a 10 ms deadline, as SCHED_FIFO 50, nice -10
# and nice 0 side by side: the control for vigil's BFD timer lateness. A
# SCHED_FIFO loop that is late by tens of milliseconds was not running
# because its CPU was not (a vCPU the host stopped, or a kernel path with
# interrupts off): no priority inside the machine helps against that.
# Run as root (SCHED_FIFO, negative nice):
#   bash bench/bfd_probe.sh [SECONDS] [BUSY_LOOPS]
# Each mode prints its wake-ups, the latest (with its CLOCK_MONOTONIC
# time, to line up with `perf sched timehist`), and how many were later
# than 10 and 30 ms.
set -euo pipefail
SECS=${1:-30} BUSY=${2:-0}
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
cat >"$dir/probe.c" <<'C'
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
static long long now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
int main(int argc, char **argv) {
	const char *mode = argv[1];
	long long secs = atoll(argv[2]);
	if (!strcmp(mode, "fifo")) {
		struct sched_param p = {.sched_priority = 50};
		if (sched_setscheduler(0, SCHED_FIFO, &p)) { perror("SCHED_FIFO"); return 1; }
	} else if (setpriority(PRIO_PROCESS, 0, atoi(mode))) { perror("nice"); return 1; }
	int tfd = timerfd_create(CLOCK_MONOTONIC, 0), ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN};
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	long long start = now(), due = start, max = 0, maxat = 0, n = 0, over10 = 0, over30 = 0;
	while (due - start < secs * 1000000000LL) {
		due += 10000000LL;
		struct itimerspec its = {0};
		its.it_value.tv_sec = due / 1000000000LL, its.it_value.tv_nsec = due % 1000000000LL;
		timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
		unsigned long long x;
		if (epoll_wait(ep, &ev, 1, -1) != 1 || read(tfd, &x, 8) != 8) continue;
		long long t = now(), late = t - due;
		n++;
		if (late > max) max = late, maxat = t;
		over10 += late > 10000000, over30 += late > 30000000;
		if (late > 0) due = t; /* the next deadline from now, as a BFD transmit timer */
	}
	printf("%-5s wake-ups %lld, latest %.1f ms (at %.3f), later than 10 ms %lld, than 30 ms %lld\n",
	       mode, n, max / 1e6, maxat / 1e9, over10, over30);
	return 0;
}
C
cc -O2 -o "$dir/probe" "$dir/probe.c"
for _ in $(seq "$BUSY"); do sh -c 'while :; do :; done' & done
for mode in fifo -10 0; do "$dir/probe" "$mode" "$SECS" & done
wait $(jobs -p | tail -3)
