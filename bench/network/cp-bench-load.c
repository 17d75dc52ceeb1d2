/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cp-bench-load: the companions of the SM benchmark, cheap enough not to
 * eat the cores it measures. CLIENTS threads, each a companion that
 * provisions its devices one after the other: each provisioning on a new
 * TCP connection with a full TLS handshake (no session cache, no
 * tickets), the server's certificate verified against CA-FILE,
 * POST /v1/provision with the bearer token, the answer read to the end.
 *
 *   cp-bench-load HOST PORT CA-FILE TOKEN CLIENTS < JOBS
 *
 * JOBS: one line a provisioning, "CLIENT CERTIFICATE-URL DEVICE-RECORD"
 * (CLIENT 0 .. CLIENTS-1, the record in base64), in each client's order.
 * Prints one line a provisioning, "CLIENT STATUS MICROSECONDS BODY" (the
 * answer's body on one line, "-" when none), then
 * "wall-us W cpu-us C": the time from the first request to the last
 * answer, and the CPU this process spent in it (user + system).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define LINE_MAX_LEN 8192
#define ANSWER_MAX 65536

typedef struct {
	char *url;
	char *record;
	int status;
	double us;
	char *body;
} Job;

typedef struct {
	Job *jobs;
	size_t n, cap;
	pthread_t thread;
} Client;

static const char *host, *token;
static struct sockaddr_storage addr;
static socklen_t addr_len;
static SSL_CTX *ctx;
static int host_is_ip;

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
write_all(SSL *ssl, const char *p, size_t len)
{
	while (len) {
		int n = SSL_write(ssl, p, (int)len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One provisioning: the HTTP status (0 when the exchange failed). */
static int
provision(const Job *j, char **body)
{
	char *req = NULL, *answer = NULL;
	size_t got = 0;
	int fd, one = 1, status = 0, len;
	SSL *ssl = NULL;
	char *json;

	*body = NULL;
	fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&addr, addr_len) < 0)
		goto out;
	ssl = SSL_new(ctx);
	if (!ssl || SSL_set_fd(ssl, fd) != 1 ||
	    (host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) : SSL_set1_host(ssl, host)) != 1 ||
	    SSL_connect(ssl) != 1)
		goto out;
	len = asprintf(&json, "{\"certificate-url\":\"%s\",\"device-record\":\"%s\"}", j->url, j->record);
	if (len < 0)
		goto out;
	len = asprintf(&req, "POST /v1/provision HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
		       "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		       host, token, len, json);
	free(json);
	if (len < 0 || write_all(ssl, req, (size_t)len) < 0)
		goto out;
	answer = malloc(ANSWER_MAX + 1);
	if (!answer)
		goto out;
	for (;;) {
		int n = SSL_read(ssl, answer + got, (int)(ANSWER_MAX - got));

		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == ANSWER_MAX)
			break;
	}
	answer[got] = '\0';
	if (sscanf(answer, "HTTP/1.%*d %d", &status) != 1)
		status = 0;
	else if ((json = strstr(answer, "\r\n\r\n")))
		*body = strdup(json + 4);
	SSL_shutdown(ssl);
out:
	free(req);
	free(answer);
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return status;
}

static void *
client_run(void *data)
{
	Client *c = data;

	for (size_t i = 0; i < c->n; i++) {
		Job *j = &c->jobs[i];
		double t0 = now_us();

		j->status = provision(j, &j->body);
		j->us = now_us() - t0;
	}
	return NULL;
}

static double
cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

int
main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char line[LINE_MAX_LEN];
	Client *clients;
	double t0, cpu0;
	int n_clients;

	if (argc != 6 || (n_clients = atoi(argv[5])) <= 0) {
		fprintf(stderr, "usage: cp-bench-load HOST PORT CA-FILE TOKEN CLIENTS < JOBS\n");
		return 2;
	}
	host = argv[1];
	token = argv[4];
	{
		unsigned char buf[sizeof(struct in6_addr)];

		host_is_ip = inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
	}
	if (getaddrinfo(host, argv[2], &hints, &ai) != 0 || !ai) {
		fprintf(stderr, "cp-bench-load: cannot resolve %s:%s\n", host, argv[2]);
		return 1;
	}
	memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
	addr_len = ai->ai_addrlen;
	freeaddrinfo(ai);

	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || SSL_CTX_load_verify_locations(ctx, argv[3], NULL) != 1) {
		fprintf(stderr, "cp-bench-load: cannot load %s\n", argv[3]);
		return 1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* every provisioning a full handshake, as a new companion's */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);

	clients = calloc((size_t)n_clients, sizeof(*clients));
	if (!clients)
		return 1;
	while (fgets(line, sizeof(line), stdin)) {
		char url[LINE_MAX_LEN], rec[LINE_MAX_LEN];
		int k;
		Client *c;

		if (sscanf(line, "%d %8191s %8191s", &k, url, rec) != 3 || k < 0 || k >= n_clients) {
			fprintf(stderr, "cp-bench-load: bad job line: %s", line);
			return 2;
		}
		c = &clients[k];
		if (c->n == c->cap) {
			c->cap = c->cap ? 2 * c->cap : 16;
			c->jobs = realloc(c->jobs, c->cap * sizeof(*c->jobs));
			if (!c->jobs)
				return 1;
		}
		c->jobs[c->n++] = (Job){ .url = strdup(url), .record = strdup(rec) };
	}

	t0 = now_us();
	cpu0 = cpu_us();
	for (int k = 0; k < n_clients; k++)
		if (pthread_create(&clients[k].thread, NULL, client_run, &clients[k]) != 0) {
			fprintf(stderr, "cp-bench-load: cannot start a thread: %s\n", strerror(errno));
			return 1;
		}
	for (int k = 0; k < n_clients; k++)
		pthread_join(clients[k].thread, NULL);
	t0 = now_us() - t0;
	cpu0 = cpu_us() - cpu0;

	for (int k = 0; k < n_clients; k++) {
		for (size_t i = 0; i < clients[k].n; i++) {
			Job *j = &clients[k].jobs[i];

			for (char *p = j->body; p && *p; p++)
				if (*p == '\n' || *p == '\r')
					*p = ' ';
			printf("%d %d %.0f %s\n", k, j->status, j->us, j->body && *j->body ? j->body : "-");
			free(j->url);
			free(j->record);
			free(j->body);
		}
		free(clients[k].jobs);
	}
	printf("wall-us %.0f cpu-us %.0f\n", t0, cpu0);
	free(clients);
	SSL_CTX_free(ctx);
	return 0;
}
