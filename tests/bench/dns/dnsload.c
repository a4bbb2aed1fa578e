/*
 * dnsload — open-loop DNS load generator for the DNS benchmark (bench tooling only).
 *
 * Why not dnsperf alone: Debian's dnsperf 2.10 reports only average/stddev latency, and
 * it cannot tell which queries were lost while a server reloaded. dnsload sends queries
 * at a fixed rate (open loop, so a stalled server cannot slow the sender down and hide
 * its stall), records every query's send time and latency, and reports exact
 * percentiles over the whole run and over the reload window.
 *
 * Modes:
 *   dnsload -s ADDR -p PORT -d FILE -r QPS -l SEC [-t TIMEOUT]
 *           [--reload-at SEC --reload-cmd CMD --probe NAME [--window-min SEC]
 *            [--after SEC] [--max SEC]]
 *       One JSON object on stdout with sent/answered/lost, rcodes, p50/p90/p99/max.
 *       With --reload-at, CMD runs (sh -c) at that second; reload_done is the first
 *       NXDOMAIN answer for the probe NAME (a name only the new list blocks), asked
 *       every 5 ms from its own socket. Stats are split into "steady" (sent before the
 *       trigger) and "reload" (sent from the trigger to max(done, trigger+window-min)).
 *   dnsload --wait -s ADDR -p PORT -q NAME --rcode RC [-t TIMEOUT]
 *       Asks NAME every 10 ms until an answer with rcode RC (noerror|nxdomain) comes;
 *       prints the CLOCK_REALTIME of that answer in ns (so a script can subtract the
 *       time it started the server). Exit 1 on timeout.
 *
 * A query counts as lost when no answer arrived within TIMEOUT seconds (default 5,
 * what a stub resolver waits); late answers are counted as lost, not as latency.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NSOCK 8

extern char **environ;
#define MAXPKT 512

struct qname {
	uint8_t wire[MAXPKT];
	size_t len;     /* header + question */
};

struct rec {
	uint64_t sent_ns;       /* since start */
	int64_t lat_ns;         /* -1: no answer (yet) */
	int rcode;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Encodes "name [TYPE]" into a query packet (id 0, RD set). Returns 0, or -1 on a bad name. */
static int build_query(const char *line, struct qname *q)
{
	char name[300], type[16] = "A";
	if (sscanf(line, "%299s %15s", name, type) < 1)
		return -1;
	uint16_t qtype = 1;
	if (!strcasecmp(type, "AAAA"))
		qtype = 28;
	else if (!strcasecmp(type, "TXT"))
		qtype = 16;
	uint8_t *p = q->wire;
	memset(p, 0, 12);
	p[2] = 0x01;            /* RD */
	p[5] = 1;               /* QDCOUNT */
	size_t off = 12;
	const char *s = name;
	while (*s) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);
		if (l == 0 || l > 63 || off + l + 6 > MAXPKT)
			return -1;
		p[off++] = (uint8_t)l;
		memcpy(p + off, s, l);
		off += l;
		s += l;
		if (*s == '.')
			s++;
	}
	p[off++] = 0;
	p[off++] = (uint8_t)(qtype >> 8);
	p[off++] = (uint8_t)qtype;
	p[off++] = 0;
	p[off++] = 1;
	q->len = off;
	return 0;
}

static int open_sock(const struct sockaddr_in *dst)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int buf = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
	if (connect(fd, (const struct sockaddr *)dst, sizeof *dst) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* p99 in µs of the queries sent in [from, to) that were answered in time; -1 if none. */
static double window_p99(const struct rec *r, size_t n, uint64_t from, uint64_t to,
			 uint64_t timeout_ns)
{
	int64_t *lat = malloc((n ? n : 1) * sizeof *lat);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (r[i].sent_ns >= from && r[i].sent_ns < to && r[i].lat_ns >= 0 &&
		    (uint64_t)r[i].lat_ns <= timeout_ns)
			lat[k++] = r[i].lat_ns;
	qsort(lat, k, sizeof *lat, cmp_i64);
	double v = k ? lat[(size_t)((double)(k - 1) * 0.99)] / 1000.0 : -1.0;
	free(lat);
	return v;
}

/* Prints a JSON stats object for records whose send time lies in [from, to). */
static void print_stats(const char *key, const struct rec *r, size_t n, uint64_t from,
			uint64_t to, uint64_t timeout_ns)
{
	int64_t *lat = malloc((n ? n : 1) * sizeof *lat);
	size_t sent = 0, ok = 0, rc[6] = {0};
	uint64_t first = UINT64_MAX, last = 0;
	for (size_t i = 0; i < n; i++) {
		if (r[i].sent_ns < from || r[i].sent_ns >= to)
			continue;
		sent++;
		if (r[i].sent_ns < first)
			first = r[i].sent_ns;
		if (r[i].sent_ns > last)
			last = r[i].sent_ns;
		if (r[i].lat_ns < 0 || (uint64_t)r[i].lat_ns > timeout_ns)
			continue;
		lat[ok++] = r[i].lat_ns;
		int c = r[i].rcode;
		rc[c == 0 ? 0 : c == 3 ? 1 : c == 2 ? 2 : c == 5 ? 3 : 4]++;
	}
	qsort(lat, ok, sizeof *lat, cmp_i64);
#define PCT(p) (ok ? lat[(size_t)((double)(ok - 1) * (p))] / 1000.0 : -1.0)
	double span = sent > 1 ? (double)(last - first) / 1e9 : 0;
	printf("\"%s\":{\"sent\":%zu,\"answered\":%zu,\"lost\":%zu,\"duration_s\":%.3f,"
	       "\"rate_qps\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
	       "\"max_us\":%.1f,\"rcodes\":{\"NOERROR\":%zu,\"NXDOMAIN\":%zu,"
	       "\"SERVFAIL\":%zu,\"REFUSED\":%zu,\"other\":%zu}}",
	       key, sent, ok, sent - ok, span, span > 0 ? (double)(sent - 1) / span : 0.0,
	       PCT(0.50), PCT(0.90), PCT(0.99), PCT(1.0), rc[0], rc[1], rc[2], rc[3], rc[4]);
#undef PCT
	free(lat);
}

static int wait_ready(const struct sockaddr_in *dst, const char *name, int want_rcode,
		      double timeout_s)
{
	struct qname q;
	if (build_query(name, &q) < 0) {
		fprintf(stderr, "dnsload: bad name '%s'\n", name);
		return 2;
	}
	int fd = open_sock(dst);
	if (fd < 0) {
		perror("dnsload: socket");
		return 2;
	}
	uint64_t end = now_ns() + (uint64_t)(timeout_s * 1e9);
	uint16_t id = 1;
	while (now_ns() < end) {
		q.wire[0] = (uint8_t)(id >> 8);
		q.wire[1] = (uint8_t)id;
		if (send(fd, q.wire, q.len, 0) < 0 && errno != ECONNREFUSED && errno != EAGAIN)
			perror("dnsload: send");
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t until = now_ns() + 10000000ull;
		while (now_ns() < until) {
			int ms = (int)((until - now_ns()) / 1000000ull) + 1;
			if (poll(&pfd, 1, ms) <= 0)
				continue;
			uint8_t buf[4096];
			ssize_t len = recv(fd, buf, sizeof buf, 0);
			if (len < 12)
				continue;
			if ((buf[3] & 0x0f) == want_rcode) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				printf("%llu\n", (unsigned long long)ts.tv_sec * 1000000000ull +
						       (unsigned long long)ts.tv_nsec);
				close(fd);
				return 0;
			}
		}
		id++;
	}
	close(fd);
	fprintf(stderr, "dnsload: no %s answer for %s within %.0f s\n",
		want_rcode == 3 ? "NXDOMAIN" : "NOERROR", name, timeout_s);
	return 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: dnsload -s ADDR -p PORT -d FILE -r QPS -l SEC [-t TIMEOUT]\n"
		"               [--reload-at SEC --reload-cmd CMD --probe NAME [--window-min SEC]\n"
		"                [--after SEC] [--max SEC]]\n"
		"       dnsload --wait -s ADDR -p PORT -q NAME --rcode noerror|nxdomain [-t SEC]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *file = NULL, *qname = NULL, *reload_cmd = NULL;
	const char *probe = NULL;
	int port = 53, wait_mode = 0, want_rcode = 0;
	double rate = 1000, secs = 5, timeout = 5, reload_at = -1, window_min = 1;
	double after = 3, max_secs = 120;
	static const struct option lo[] = {
		{"wait", no_argument, NULL, 'W'},     {"rcode", required_argument, NULL, 'R'},
		{"reload-at", required_argument, NULL, 'A'},
		{"reload-cmd", required_argument, NULL, 'C'},
		{"probe", required_argument, NULL, 'P'},
		{"window-min", required_argument, NULL, 'w'},
		{"after", required_argument, NULL, 'a'}, {"max", required_argument, NULL, 'M'},
		{NULL, 0, NULL, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "s:p:d:r:l:t:q:", lo, NULL)) != -1) {
		switch (c) {
		case 's': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'd': file = optarg; break;
		case 'r': rate = atof(optarg); break;
		case 'l': secs = atof(optarg); break;
		case 't': timeout = atof(optarg); break;
		case 'q': qname = optarg; break;
		case 'W': wait_mode = 1; break;
		case 'R': want_rcode = !strcasecmp(optarg, "nxdomain") ? 3 : 0; break;
		case 'A': reload_at = atof(optarg); break;
		case 'C': reload_cmd = optarg; break;
		case 'P': probe = optarg; break;
		case 'w': window_min = atof(optarg); break;
		case 'a': after = atof(optarg); break;
		case 'M': max_secs = atof(optarg); break;
		default: usage();
		}
	}
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, addr, &dst.sin_addr) != 1) {
		fprintf(stderr, "dnsload: -s %s: not an IPv4 address\n", addr);
		return 2;
	}
	if (wait_mode) {
		if (!qname)
			usage();
		return wait_ready(&dst, qname, want_rcode, timeout);
	}
	if (!file || rate <= 0 || secs <= 0 || (reload_at >= 0 && (!reload_cmd || !probe)))
		usage();

	/* Query file: dnsperf format, one "name TYPE" per line. */
	FILE *f = fopen(file, "r");
	if (!f) {
		fprintf(stderr, "dnsload: %s: %s\n", file, strerror(errno));
		return 2;
	}
	size_t nq = 0, capq = 1024;
	struct qname *qs = malloc(capq * sizeof *qs);
	char line[512];
	unsigned long lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		if (line[0] == '\n' || line[0] == '#')
			continue;
		if (nq == capq)
			qs = realloc(qs, (capq *= 2) * sizeof *qs);
		if (build_query(line, &qs[nq]) < 0) {
			fprintf(stderr, "dnsload: %s:%lu: bad query line, skipped\n", file, lineno);
			continue;
		}
		nq++;
	}
	fclose(f);
	if (!nq) {
		fprintf(stderr, "dnsload: %s: no queries\n", file);
		return 2;
	}

	int fds[NSOCK], probe_fd = -1;
	for (int i = 0; i < NSOCK; i++)
		if ((fds[i] = open_sock(&dst)) < 0) {
			perror("dnsload: socket");
			return 2;
		}
	struct qname pq;
	if (probe) {
		if (build_query(probe, &pq) < 0 || (probe_fd = open_sock(&dst)) < 0) {
			fprintf(stderr, "dnsload: bad probe name '%s'\n", probe);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);

	size_t cap = (size_t)(rate * (max_secs + 1)) + 16;
	struct rec *recs = calloc(cap, sizeof *recs);
	/* pending[s][id] = record index + 1; a slot is reused only after NSOCK*65536 sends,
	 * far longer than the timeout at the rates the benchmark uses. */
	static uint32_t pending[NSOCK][65536];
	uint64_t interval = (uint64_t)(1e9 / rate), timeout_ns = (uint64_t)(timeout * 1e9);
	uint64_t t0 = now_ns(), stop_send = (uint64_t)(secs * 1e9);
	uint64_t trig = UINT64_MAX, done = UINT64_MAX, cmd_end = UINT64_MAX, next_probe = 0;
	uint64_t hard_stop = (uint64_t)(max_secs * 1e9);
	pid_t child = -1;
	int cmd_status = -1, timed_out = 0;
	size_t n = 0, outstanding = 0;
	struct pollfd pfd[NSOCK + 1];
	for (int i = 0; i < NSOCK; i++)
		pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
	pfd[NSOCK] = (struct pollfd){.fd = probe_fd, .events = POLLIN};

	for (;;) {
		uint64_t t = now_ns() - t0;
		if (reload_at >= 0 && trig == UINT64_MAX && t >= (uint64_t)(reload_at * 1e9)) {
			trig = t;
			next_probe = t;
			/* posix_spawn (vfork-like in glibc): a fork of this process would copy its
			 * page tables right when the latency of the reload window is measured. */
			char *sargv[] = {"sh", "-c", (char *)reload_cmd, NULL};
			if (posix_spawn(&child, "/bin/sh", NULL, NULL, sargv, environ) != 0)
				child = -1;
		}
		if (child > 0) {
			int st;
			if (waitpid(child, &st, WNOHANG) == child) {
				cmd_end = t;
				cmd_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
				child = -1;
			}
		}
		if (trig != UINT64_MAX && done == UINT64_MAX && t >= next_probe) {
			pq.wire[0] = (uint8_t)(t >> 8);
			pq.wire[1] = (uint8_t)t;
			(void)!send(probe_fd, pq.wire, pq.len, 0);
			next_probe = t + 5000000ull;
		}
		/* With a reload, keep loading until the probe flips, then `after` seconds more. */
		uint64_t end_send = stop_send;
		if (reload_at >= 0) {
			uint64_t want = done == UINT64_MAX ? hard_stop
							   : done + (uint64_t)(after * 1e9);
			if (want > end_send)
				end_send = want;
			if (end_send > hard_stop)
				end_send = hard_stop;
			if (done == UINT64_MAX && t >= hard_stop)
				timed_out = 1;
		}
		/* Every query due before the end is sent, even after a stall of this process:
		 * the count of a run is rate x seconds, whatever the machine did. */
		while (n < cap && (uint64_t)n * interval <= t && (uint64_t)n * interval < end_send) {
			int s = (int)(n % NSOCK);
			uint16_t id = (uint16_t)(n / NSOCK);
			struct qname *q = &qs[n % nq];
			q->wire[0] = (uint8_t)(id >> 8);
			q->wire[1] = (uint8_t)id;
			recs[n].sent_ns = now_ns() - t0;
			recs[n].lat_ns = -1;
			if (pending[s][id])
				outstanding--;
			pending[s][id] = (uint32_t)n + 1;
			outstanding++;
			if (send(fds[s], q->wire, q->len, 0) < 0 && errno != ECONNREFUSED &&
			    errno != EAGAIN && errno != ENOBUFS) {
				perror("dnsload: send");
				return 2;
			}
			n++;
		}
		if (t >= end_send)
			break;
		/* Sleep until the next send is due (ns precision: a busy loop would steal the
		 * core the server under test needs on a 2-core box). */
		uint64_t next = (uint64_t)n * interval;
		t = now_ns() - t0;
		uint64_t wait = next > t ? next - t : 0;
		if (done == UINT64_MAX && trig != UINT64_MAX && wait > 5000000ull)
			wait = 5000000ull;
		if (wait > 50000000ull)
			wait = 50000000ull;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)wait};
		if (ppoll(pfd, probe_fd >= 0 ? NSOCK + 1 : NSOCK, &ts, NULL) <= 0)
			continue;
		uint64_t rt = now_ns() - t0;
		for (int i = 0; i < NSOCK; i++) {
			uint8_t buf[4096];
			ssize_t len;
			while ((len = recv(fds[i], buf, sizeof buf, 0)) >= 12) {
				uint16_t id = (uint16_t)(buf[0] << 8 | buf[1]);
				uint32_t k = pending[i][id];
				if (!k || !(buf[2] & 0x80))
					continue;
				pending[i][id] = 0;
				outstanding--;
				recs[k - 1].lat_ns = (int64_t)(rt - recs[k - 1].sent_ns);
				recs[k - 1].rcode = buf[3] & 0x0f;
			}
		}
		if (probe_fd >= 0) {
			uint8_t buf[4096];
			ssize_t len;
			while ((len = recv(probe_fd, buf, sizeof buf, 0)) >= 12)
				if ((buf[3] & 0x0f) == 3 && done == UINT64_MAX && trig != UINT64_MAX)
					done = rt;
		}
	}
	/* Drain: answers that still arrive within the timeout count. */
	uint64_t drain_end = now_ns() - t0 + timeout_ns;
	while (outstanding > 0 && now_ns() - t0 < drain_end) {
		if (poll(pfd, NSOCK, 20) <= 0)
			continue;
		uint64_t rt = now_ns() - t0;
		for (int i = 0; i < NSOCK; i++) {
			uint8_t buf[4096];
			ssize_t len;
			while ((len = recv(fds[i], buf, sizeof buf, 0)) >= 12) {
				uint16_t id = (uint16_t)(buf[0] << 8 | buf[1]);
				uint32_t k = pending[i][id];
				if (!k)
					continue;
				pending[i][id] = 0;
				outstanding--;
				recs[k - 1].lat_ns = (int64_t)(rt - recs[k - 1].sent_ns);
				recs[k - 1].rcode = buf[3] & 0x0f;
			}
		}
	}
	if (child > 0) {
		int st;
		waitpid(child, &st, 0);
		cmd_end = now_ns() - t0;
		cmd_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	}

	printf("{\"target_qps\":%.0f,\"timeout_s\":%.1f,", rate, timeout);
	print_stats("all", recs, n, 0, UINT64_MAX, timeout_ns);
	if (reload_at >= 0) {
		uint64_t wend = trig + (uint64_t)(window_min * 1e9);
		if (done != UINT64_MAX && done > wend)
			wend = done;
		if (done == UINT64_MAX)
			wend = UINT64_MAX;
		printf(",");
		print_stats("steady", recs, n, 0, trig, timeout_ns);
		printf(",");
		print_stats("reload", recs, n, trig, wend, timeout_ns);
		/* The worst p99 of the whole seconds before the trigger: how bad an ordinary
		 * second gets on this machine, to read the reload window's p99 against. */
		double worst = -1;
		for (uint64_t w = 0; w + 1000000000ull <= trig; w += 1000000000ull) {
			double v = window_p99(recs, n, w, w + 1000000000ull, timeout_ns);
			if (v > worst)
				worst = v;
		}
		printf(",\"steady_worst_1s_p99_us\":%.1f", worst);
		printf(",\"reload_cmd_s\":%.3f,\"reload_cmd_status\":%d,\"reload_done_s\":",
		       cmd_end == UINT64_MAX ? -1.0 : (double)(cmd_end - trig) / 1e9, cmd_status);
		if (done == UINT64_MAX)
			printf("null");
		else
			printf("%.3f", (double)(done - trig) / 1e9);
		printf(",\"reload_timed_out\":%s", timed_out ? "true" : "false");
	}
	printf("}\n");
	free(recs);
	free(qs);
	return 0;
}
