// SPDX-License-Identifier: GPL-2.0
/*
 * flowgen - exact, countable test traffic for the mpbal selftests.
 *
 *   flowgen udp -d ADDR[,ADDR..] -p LO[-HI] -n COUNT [-s BYTES] [-r PPS]
 *               [-B SRCADDR] [-S SRCPORT] [-I DEV | -U DEV | -K DEV]
 *       Send COUNT UDP datagrams of BYTES payload from one socket (so one
 *       source port), cycling over every (address, port) pair: each pair is a
 *       distinct flow. Paced at PPS packets per second if -r is given. The
 *       route can be pinned to device DEV: -I with SO_BINDTODEVICE, -U with
 *       IP_UNICAST_IF, -K with an IP_PKTINFO ipi_ifindex on every datagram.
 *
 *   flowgen tcp-server -p PORT [-B ADDR] [-D]
 *       Accept connections, read and discard, close on EOF. Runs until
 *       killed. -D forks into the background once the socket is listening, so
 *       clients may connect as soon as the command returns.
 *
 *   flowgen tcp -d ADDR -p PORT -c CONNS -b BYTES [-P PARALLEL] [-B SRCADDR]
 *               [-t TIMEOUT_S]
 *       Open CONNS connections, PARALLEL at a time (default 1), send BYTES on
 *       each, half-close and wait for the server's close. A connection counts
 *       as ok only when the server has read everything and closed, so "ok"
 *       means delivered, not merely queued.
 *
 *   flowgen xfer -d ADDR[,ADDR..] -p PORT -j SIZE[:COUNT][,SIZE[:COUNT]..]
 *                [-P PARALLEL] [-r] [-B SRCADDR] [-t TIMEOUT_S]
 *       File transfers as `tcp` makes them (connect, send SIZE bytes,
 *       half-close, done when the server has read all and closed), timed one
 *       by one. The job list expands, in order, to COUNT (default 1)
 *       transfers of SIZE bytes each (suffix k, m, g: KiB, MiB, GiB). Every
 *       address gets the whole list (as the thesis sent N files to each
 *       destination); with -r the list is dealt out round-robin over the
 *       addresses instead. Each address runs PARALLEL transfers at a time
 *       (default 1) in list order; the addresses run side by side. One line
 *       per transfer, in the order they end:
 *           xfer DST SPORT SIZE START SECONDS ok|fail|timeout
 *       START is CLOCK_MONOTONIC in seconds, so lines of processes in other
 *       namespaces compare (a transfer never started: START 0, "timeout").
 *
 * Every mode prints one summary line on stdout (xfer after its per-transfer
 * lines). Exit status: 0 success,
 * 1 traffic failed (a send error, a failed or timed-out connection),
 * 2 usage or setup error. IPv4 only, numeric addresses only (no resolver,
 * so the binary links statically without NSS).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_ADDRS 64
#define MAX_UDP_PAYLOAD 65507
#define MAX_SERVER_CONNS 4096
#define IOBUF_SIZE (64 * 1024)

static const char *prog = "flowgen";

static void usage(void)
{
	fprintf(stderr,
		"usage: %s udp -d ADDR[,ADDR..] -p LO[-HI] -n COUNT [-s BYTES] [-r PPS] [-B SRCADDR] [-S SRCPORT]\n"
		"           [-I DEV | -U DEV | -K DEV]\n"
		"       %s tcp-server -p PORT [-B ADDR] [-D]\n"
		"       %s tcp -d ADDR -p PORT -c CONNS -b BYTES [-P PARALLEL] [-B SRCADDR] [-t TIMEOUT_S]\n"
		"       %s xfer -d ADDR[,ADDR..] -p PORT -j SIZE[:COUNT][,..] [-P PARALLEL] [-r] [-B SRCADDR]\n"
		"           [-t TIMEOUT_S]\n",
		prog, prog, prog, prog);
	exit(EXIT_USAGE);
}

static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Parse an unsigned decimal in [min, max] or exit with a usage error. */
static unsigned long long parse_num(const char *s, const char *what,
				    unsigned long long min,
				    unsigned long long max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		die(EXIT_USAGE, "bad %s '%s' (want %llu..%llu)", what, s, min,
		    max);
	return v;
}

static void parse_addr(const char *s, struct in_addr *a)
{
	if (inet_pton(AF_INET, s, a) != 1)
		die(EXIT_USAGE, "bad IPv4 address '%s'", s);
}

/* "A[,B..]" into addrs[]; returns the count. */
static int parse_addr_list(char *s, struct in_addr *addrs)
{
	char *save = NULL, *tok;
	int n = 0;

	for (tok = strtok_r(s, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (n == MAX_ADDRS)
			die(EXIT_USAGE, "too many addresses (max %d)",
			    MAX_ADDRS);
		parse_addr(tok, &addrs[n++]);
	}
	if (!n)
		die(EXIT_USAGE, "empty address list");
	return n;
}

/* "LO" or "LO-HI". */
static void parse_port_range(const char *s, unsigned int *lo, unsigned int *hi)
{
	char buf[32], *dash;

	if (strlen(s) >= sizeof(buf))
		die(EXIT_USAGE, "bad port range '%s'", s);
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash)
		*dash = '\0';
	*lo = parse_num(buf, "port", 1, 65535);
	*hi = dash ? parse_num(dash + 1, "port", 1, 65535) : *lo;
	if (*hi < *lo)
		die(EXIT_USAGE, "bad port range '%s'", s);
}

static void bind_src(int fd, const struct in_addr *src, unsigned int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };

	if (!src && !port)
		return;
	if (src)
		sa.sin_addr = *src;
	sa.sin_port = htons(port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die(EXIT_USAGE, "bind: %s", strerror(errno));
}

static void sleep_until(double t)
{
	struct timespec ts;
	double d = t - now_s();

	if (d <= 0)
		return;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int cmd_udp(int argc, char **argv)
{
	struct in_addr addrs[MAX_ADDRS], src;
	unsigned int plo = 0, phi = 0, sport = 0;
	unsigned long long count = 0, i, sent = 0, errors = 0, bytes = 0;
	unsigned long long pps = 0, flows;
	size_t size = 64;
	int naddr = 0, have_src = 0, have_n = 0, opt, fd, last_err = 0;
	char *payload;
	double t0;
	const char *bind_dev = NULL, *uc_dev = NULL, *pktinfo_dev = NULL;
	union {
		char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} cmsg;
	unsigned int pktinfo_if = 0;

	while ((opt = getopt(argc, argv, "d:p:n:s:r:B:S:I:U:K:")) != -1) {
		switch (opt) {
		case 'd': naddr = parse_addr_list(optarg, addrs); break;
		case 'p': parse_port_range(optarg, &plo, &phi); break;
		case 'n': count = parse_num(optarg, "count", 0, UINT64_MAX); have_n = 1; break;
		case 's': size = parse_num(optarg, "size", 0, MAX_UDP_PAYLOAD); break;
		case 'r': pps = parse_num(optarg, "rate", 1, 10000000); break;
		case 'B': parse_addr(optarg, &src); have_src = 1; break;
		case 'S': sport = parse_num(optarg, "source port", 1, 65535); break;
		case 'I': bind_dev = optarg; break;
		case 'U': uc_dev = optarg; break;
		case 'K': pktinfo_dev = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || !naddr || !plo || !have_n)
		usage();

	payload = calloc(1, size ? size : 1);
	if (!payload)
		die(EXIT_USAGE, "out of memory");
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die(EXIT_USAGE, "socket: %s", strerror(errno));
	bind_src(fd, have_src ? &src : NULL, sport);
	if (bind_dev && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, bind_dev,
				   strlen(bind_dev) + 1))
		die(EXIT_USAGE, "SO_BINDTODEVICE %s: %s", bind_dev, strerror(errno));
	if (uc_dev) {
		/* IPv4 takes the ifindex in network byte order. */
		uint32_t idx = htonl(if_nametoindex(uc_dev));

		if (!idx || setsockopt(fd, IPPROTO_IP, IP_UNICAST_IF, &idx, sizeof(idx)))
			die(EXIT_USAGE, "IP_UNICAST_IF %s: %s", uc_dev, strerror(errno));
	}
	if (pktinfo_dev && !(pktinfo_if = if_nametoindex(pktinfo_dev)))
		die(EXIT_USAGE, "no device %s", pktinfo_dev);

	flows = (unsigned long long)naddr * (phi - plo + 1);
	t0 = now_s();
	for (i = 0; i < count; i++) {
		/* Walk the addresses fastest so consecutive packets differ. */
		unsigned long long k = i % flows;
		struct sockaddr_in sa = {
			.sin_family = AF_INET,
			.sin_addr = addrs[k % naddr],
			.sin_port = htons(plo + k / naddr),
		};
		ssize_t n;

		if (pps)
			sleep_until(t0 + (double)i / pps);
		/* Tag each datagram with its sequence number for captures. */
		if (size >= sizeof(uint64_t))
			memcpy(payload, &i, sizeof(uint64_t));
		if (pktinfo_if) {
			struct iovec iov = { .iov_base = payload, .iov_len = size };
			struct msghdr msg = {
				.msg_name = &sa, .msg_namelen = sizeof(sa),
				.msg_iov = &iov, .msg_iovlen = 1,
				.msg_control = cmsg.buf, .msg_controllen = sizeof(cmsg.buf),
			};
			struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
			struct in_pktinfo pi = { .ipi_ifindex = pktinfo_if };

			c->cmsg_level = IPPROTO_IP;
			c->cmsg_type = IP_PKTINFO;
			c->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(c), &pi, sizeof(pi));
			n = sendmsg(fd, &msg, 0);
		} else {
			n = sendto(fd, payload, size, 0, (struct sockaddr *)&sa,
				   sizeof(sa));
		}
		if (n < 0) {
			if (!errors)
				last_err = errno;
			errors++;
			continue;
		}
		sent++;
		bytes += n;
	}
	printf("flowgen udp: sent=%llu errors=%llu bytes=%llu flows=%llu seconds=%.3f\n",
	       sent, errors, bytes, flows < count ? flows : count,
	       now_s() - t0);
	if (errors)
		fprintf(stderr, "%s: udp: first send error: %s\n", prog,
			strerror(last_err));
	close(fd);
	free(payload);
	return errors ? EXIT_FAIL : 0;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int cmd_tcp_server(int argc, char **argv)
{
	static struct pollfd pfd[MAX_SERVER_CONNS + 1];
	static char buf[IOBUF_SIZE];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	unsigned long long conns = 0, bytes = 0;
	int opt, fd, one = 1, daemonize = 0, nfds = 1, port = 0, i;
	struct sigaction act = { .sa_handler = on_signal };

	while ((opt = getopt(argc, argv, "p:B:D")) != -1) {
		switch (opt) {
		case 'p': port = parse_num(optarg, "port", 1, 65535); break;
		case 'B': parse_addr(optarg, &sa.sin_addr); break;
		case 'D': daemonize = 1; break;
		default: usage();
		}
	}
	if (optind != argc || !port)
		usage();
	sa.sin_port = htons(port);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die(EXIT_USAGE, "socket: %s", strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		die(EXIT_USAGE, "SO_REUSEADDR: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die(EXIT_USAGE, "bind port %d: %s", port, strerror(errno));
	if (listen(fd, 1024) < 0 || set_nonblock(fd) < 0)
		die(EXIT_USAGE, "listen: %s", strerror(errno));

	/* Listening before the fork: no race with a client started next. */
	if (daemonize) {
		pid_t pid = fork();
		int null;

		if (pid < 0)
			die(EXIT_USAGE, "fork: %s", strerror(errno));
		if (pid > 0) {
			printf("flowgen tcp-server: listening port=%d pid=%d\n",
			       port, (int)pid);
			return 0;
		}
		setsid();
		null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			if (null > 2)
				close(null);
		}
	}
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	signal(SIGPIPE, SIG_IGN);

	pfd[0].fd = fd;
	pfd[0].events = POLLIN;
	while (!stop) {
		if (poll(pfd, nfds, -1) < 0) {
			if (errno == EINTR)
				continue;
			die(EXIT_FAIL, "poll: %s", strerror(errno));
		}
		/* Drain the data of existing connections first. */
		for (i = 1; i < nfds; i++) {
			ssize_t n;

			if (!pfd[i].revents)
				continue;
			n = read(pfd[i].fd, buf, sizeof(buf));
			if (n > 0) {
				bytes += n;
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			/* EOF or error: close and compact the array. */
			close(pfd[i].fd);
			pfd[i] = pfd[--nfds];
			i--;
		}
		if (pfd[0].revents & POLLIN) {
			while (nfds <= MAX_SERVER_CONNS) {
				int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK);

				if (c < 0)
					break;
				conns++;
				pfd[nfds].fd = c;
				pfd[nfds].events = POLLIN;
				pfd[nfds].revents = 0;
				nfds++;
			}
		}
	}
	printf("flowgen tcp-server: conns=%llu bytes=%llu\n", conns, bytes);
	return 0;
}

enum conn_state { C_IDLE, C_CONNECTING, C_SENDING, C_DRAINING };

struct conn {
	int fd;
	enum conn_state state;
	unsigned long long left;
};

/* Start one non-blocking connect; returns 0 or -1 (counted as failed). */
static int conn_start(struct conn *c, const struct sockaddr_in *dst,
		      const struct in_addr *src, unsigned long long bytes)
{
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return -1;
	if (src) {
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_addr = *src };

		/* Let connect() pick the port: no ephemeral exhaustion. */
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
			   sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto fail;
	}
	c->left = bytes;
	if (connect(c->fd, (const struct sockaddr *)dst, sizeof(*dst)) < 0 &&
	    errno != EINPROGRESS)
		goto fail;
	c->state = C_CONNECTING;
	return 0;
fail:
	close(c->fd);
	c->fd = -1;
	c->state = C_IDLE;
	return -1;
}

static void conn_end(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = C_IDLE;
}

/* Advance one connection; returns 1 when done ok, -1 failed, 0 pending. */
static int conn_step(struct conn *c, short revents, const char *buf)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (c->state == C_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
		    err)
			return -1;
		c->state = C_SENDING;
	}
	if (c->state == C_SENDING) {
		while (c->left) {
			size_t chunk = c->left < IOBUF_SIZE ? c->left : IOBUF_SIZE;
			ssize_t n = send(c->fd, buf, chunk, MSG_NOSIGNAL);

			if (n < 0)
				return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
			c->left -= n;
		}
		/* FIN after the data; the server closes once it read it all. */
		if (shutdown(c->fd, SHUT_WR) < 0)
			return -1;
		c->state = C_DRAINING;
		return 0;
	}
	if (c->state == C_DRAINING && (revents & (POLLIN | POLLHUP | POLLERR))) {
		char tmp[256];
		ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);

		if (n == 0)
			return 1;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		return n < 0 ? -1 : 0;	/* unexpected data: keep draining */
	}
	return 0;
}

static int cmd_tcp(int argc, char **argv)
{
	static char buf[IOBUF_SIZE];
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct in_addr src;
	unsigned long long conns = 0, bytes = 0, started = 0, ok = 0, failed = 0;
	unsigned long parallel = 1, timeout_s = 60;
	int opt, have_dst = 0, have_src = 0, have_b = 0, port = 0, i;
	int timed_out;
	struct pollfd *pfd;
	struct conn *cs;
	double t0, deadline;

	while ((opt = getopt(argc, argv, "d:p:c:b:P:B:t:")) != -1) {
		switch (opt) {
		case 'd': parse_addr(optarg, &dst.sin_addr); have_dst = 1; break;
		case 'p': port = parse_num(optarg, "port", 1, 65535); break;
		case 'c': conns = parse_num(optarg, "connections", 1, 10000000); break;
		case 'b': bytes = parse_num(optarg, "bytes", 0, UINT64_MAX); have_b = 1; break;
		case 'P': parallel = parse_num(optarg, "parallel", 1, 1024); break;
		case 'B': parse_addr(optarg, &src); have_src = 1; break;
		case 't': timeout_s = parse_num(optarg, "timeout", 1, 86400); break;
		default: usage();
		}
	}
	if (optind != argc || !have_dst || !port || !conns || !have_b)
		usage();
	dst.sin_port = htons(port);
	if (parallel > conns)
		parallel = conns;

	memset(buf, 'm', sizeof(buf));
	pfd = calloc(parallel, sizeof(*pfd));
	cs = calloc(parallel, sizeof(*cs));
	if (!pfd || !cs)
		die(EXIT_USAGE, "out of memory");
	for (i = 0; i < (int)parallel; i++) {
		cs[i].fd = -1;
		cs[i].state = C_IDLE;
	}

	t0 = now_s();
	deadline = t0 + timeout_s;
	while (ok + failed < conns) {
		int active = 0, ms;
		double left = deadline - now_s();

		if (left <= 0)
			break;
		for (i = 0; i < (int)parallel; i++) {
			if (cs[i].state == C_IDLE && started < conns) {
				started++;
				if (conn_start(&cs[i], &dst, have_src ? &src : NULL,
					       bytes) < 0)
					failed++;
			}
			pfd[i].fd = cs[i].fd;	/* -1 is ignored by poll */
			pfd[i].revents = 0;
			switch (cs[i].state) {
			case C_CONNECTING: pfd[i].events = POLLOUT; break;
			case C_SENDING: pfd[i].events = POLLOUT; break;
			case C_DRAINING: pfd[i].events = POLLIN; break;
			default: pfd[i].events = 0; break;
			}
			active += cs[i].state != C_IDLE;
		}
		if (!active)
			continue;	/* every start failed; loop starts more */
		ms = left > 1 ? 1000 : (int)(left * 1000) + 1;
		if (poll(pfd, parallel, ms) < 0) {
			if (errno == EINTR)
				continue;
			die(EXIT_FAIL, "poll: %s", strerror(errno));
		}
		for (i = 0; i < (int)parallel; i++) {
			int r;

			if (cs[i].state == C_IDLE || !pfd[i].revents)
				continue;
			r = conn_step(&cs[i], pfd[i].revents, buf);
			if (r) {
				r > 0 ? ok++ : failed++;
				conn_end(&cs[i]);
			}
		}
	}
	/* Whatever is still open or never started has timed out. */
	timed_out = ok + failed < conns;
	for (i = 0; i < (int)parallel; i++)
		conn_end(&cs[i]);
	failed = conns - ok;
	printf("flowgen tcp: conns=%llu ok=%llu failed=%llu bytes=%llu seconds=%.3f%s\n",
	       conns, ok, failed, ok * bytes, now_s() - t0,
	       timed_out ? " timeout" : "");
	free(pfd);
	free(cs);
	return failed ? EXIT_FAIL : 0;
}

/* "4096", "8k", "1m", "2g": bytes (binary multiples). */
static unsigned long long parse_size(const char *s)
{
	unsigned long long mul = 1;
	char buf[32];
	size_t n = strlen(s);

	if (!n || n >= sizeof(buf))
		die(EXIT_USAGE, "bad size '%s'", s);
	strcpy(buf, s);
	switch (buf[n - 1]) {
	case 'k': case 'K': mul = 1ULL << 10; break;
	case 'm': case 'M': mul = 1ULL << 20; break;
	case 'g': case 'G': mul = 1ULL << 30; break;
	}
	if (mul > 1)
		buf[n - 1] = '\0';
	return parse_num(buf, "size", 0, UINT64_MAX / mul) * mul;
}

#define MAX_XFERS 100000

struct xfer {
	unsigned long long size;
	int addr;		/* index into the address list */
	unsigned int sport;
	double start;
};

struct xfer_slot {
	struct conn c;
	int x;			/* the transfer it runs, -1 when idle */
};

static void xfer_print(const struct xfer *x, const struct in_addr *addrs,
		       double secs, const char *status)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &addrs[x->addr], a, sizeof(a));
	printf("xfer %s %u %llu %.6f %.6f %s\n", a, x->sport, x->size,
	       x->start, secs, status);
}

static int cmd_xfer(int argc, char **argv)
{
	static char buf[IOBUF_SIZE];
	static struct xfer xs[MAX_XFERS];
	struct in_addr addrs[MAX_ADDRS], src;
	struct sockaddr_in dst = { .sin_family = AF_INET };
	unsigned long long ok = 0, failed = 0, bytes = 0;
	unsigned long parallel = 1, timeout_s = 600;
	int opt, naddr = 0, have_src = 0, port = 0, rr = 0, n = 0, i, a;
	int *queue[MAX_ADDRS], qlen[MAX_ADDRS] = { 0 }, qpos[MAX_ADDRS] = { 0 };
	int nslots, done = 0, timed_out;
	char *jobs = NULL, *save = NULL, *tok;
	struct xfer_slot *slots;
	struct pollfd *pfd;
	double t0, deadline;

	while ((opt = getopt(argc, argv, "d:p:j:P:rB:t:")) != -1) {
		switch (opt) {
		case 'd': naddr = parse_addr_list(optarg, addrs); break;
		case 'p': port = parse_num(optarg, "port", 1, 65535); break;
		case 'j': jobs = optarg; break;
		case 'P': parallel = parse_num(optarg, "parallel", 1, 1024); break;
		case 'r': rr = 1; break;
		case 'B': parse_addr(optarg, &src); have_src = 1; break;
		case 't': timeout_s = parse_num(optarg, "timeout", 1, 86400); break;
		default: usage();
		}
	}
	if (optind != argc || !naddr || !port || !jobs)
		usage();
	dst.sin_port = htons(port);

	/* The transfer list: the jobs in order, to every address or dealt. */
	for (a = 0; a < (rr ? 1 : naddr); a++) {
		char *list = strdup(jobs);

		if (!list)
			die(EXIT_USAGE, "out of memory");
		for (tok = strtok_r(list, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			char *colon = strchr(tok, ':');
			unsigned long long size, count = 1, k;

			if (colon) {
				*colon = '\0';
				count = parse_num(colon + 1, "count", 1, MAX_XFERS);
			}
			size = parse_size(tok);
			for (k = 0; k < count; k++) {
				if (n == MAX_XFERS)
					die(EXIT_USAGE, "too many transfers (max %d)",
					    MAX_XFERS);
				xs[n].size = size;
				xs[n].addr = rr ? n % naddr : a;
				n++;
			}
		}
		free(list);
	}
	if (!n)
		die(EXIT_USAGE, "empty job list");
	for (a = 0; a < naddr; a++) {
		queue[a] = calloc(n, sizeof(int));
		if (!queue[a])
			die(EXIT_USAGE, "out of memory");
	}
	for (i = 0; i < n; i++)
		queue[xs[i].addr][qlen[xs[i].addr]++] = i;

	/* PARALLEL slots per address; slot s serves address s / PARALLEL. */
	nslots = naddr * (int)parallel;
	slots = calloc(nslots, sizeof(*slots));
	pfd = calloc(nslots, sizeof(*pfd));
	if (!slots || !pfd)
		die(EXIT_USAGE, "out of memory");
	for (i = 0; i < nslots; i++) {
		slots[i].c.fd = -1;
		slots[i].c.state = C_IDLE;
		slots[i].x = -1;
	}
	memset(buf, 'x', sizeof(buf));

	t0 = now_s();
	deadline = t0 + timeout_s;
	while (done < n) {
		int active = 0, ms;
		double left = deadline - now_s();

		if (left <= 0)
			break;
		for (i = 0; i < nslots; i++) {
			struct xfer_slot *sl = &slots[i];

			a = i / (int)parallel;
			if (sl->x < 0 && qpos[a] < qlen[a]) {
				struct xfer *x = &xs[queue[a][qpos[a]++]];

				sl->x = x - xs;
				x->start = now_s();
				dst.sin_addr = addrs[a];
				if (conn_start(&sl->c, &dst, have_src ? &src : NULL,
					       x->size) < 0) {
					xfer_print(x, addrs, now_s() - x->start, "fail");
					failed++;
					done++;
					sl->x = -1;
				} else {
					struct sockaddr_in me;
					socklen_t len = sizeof(me);

					if (!getsockname(sl->c.fd, (struct sockaddr *)&me, &len))
						x->sport = ntohs(me.sin_port);
				}
			}
			pfd[i].fd = sl->c.fd;	/* -1 is ignored by poll */
			pfd[i].revents = 0;
			pfd[i].events = sl->c.state == C_DRAINING ? POLLIN :
					sl->c.state == C_IDLE ? 0 : POLLOUT;
			active += sl->c.state != C_IDLE;
		}
		if (!active)
			continue;	/* every start failed; loop starts more */
		ms = left > 1 ? 1000 : (int)(left * 1000) + 1;
		if (poll(pfd, nslots, ms) < 0) {
			if (errno == EINTR)
				continue;
			die(EXIT_FAIL, "poll: %s", strerror(errno));
		}
		for (i = 0; i < nslots; i++) {
			struct xfer_slot *sl = &slots[i];
			struct xfer *x;
			int r;

			if (sl->x < 0 || !pfd[i].revents)
				continue;
			r = conn_step(&sl->c, pfd[i].revents, buf);
			if (!r)
				continue;
			x = &xs[sl->x];
			xfer_print(x, addrs, now_s() - x->start, r > 0 ? "ok" : "fail");
			if (r > 0) {
				ok++;
				bytes += x->size;
			} else {
				failed++;
			}
			done++;
			conn_end(&sl->c);
			sl->x = -1;
		}
	}
	/* Whatever is still open or never started has timed out. */
	timed_out = done < n;
	for (i = 0; i < nslots; i++) {
		if (slots[i].x >= 0)
			xfer_print(&xs[slots[i].x], addrs,
				   now_s() - xs[slots[i].x].start, "timeout");
		conn_end(&slots[i].c);
	}
	for (a = 0; a < naddr; a++) {
		for (; qpos[a] < qlen[a]; qpos[a]++)
			xfer_print(&xs[queue[a][qpos[a]]], addrs, 0, "timeout");
		free(queue[a]);
	}
	failed = n - ok;
	printf("flowgen xfer: transfers=%d ok=%llu failed=%llu bytes=%llu seconds=%.3f%s\n",
	       n, ok, failed, bytes, now_s() - t0, timed_out ? " timeout" : "");
	free(slots);
	free(pfd);
	return failed ? EXIT_FAIL : 0;
}

int main(int argc, char **argv)
{
	const char *mode;

	if (argc < 2)
		usage();
	mode = argv[1];
	/* getopt starts at argv[1] after the shift: the mode is "argv[0]". */
	argc--;
	argv++;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "udp"))
		return cmd_udp(argc, argv);
	if (!strcmp(mode, "tcp-server"))
		return cmd_tcp_server(argc, argv);
	if (!strcmp(mode, "tcp"))
		return cmd_tcp(argc, argv);
	if (!strcmp(mode, "xfer"))
		return cmd_xfer(argc, argv);
	if (!strcmp(mode, "-h") || !strcmp(mode, "--help"))
		usage();
	die(EXIT_USAGE, "unknown mode '%s'", mode);
	return EXIT_USAGE;
}
