/*
 * httpd.c - the sandbox's tiny HTTP/1.1 server: loopback only, non-blocking
 * sockets driven by the caller's poll(), keep-alive, and hard bounds on
 * everything a client sends (SANDBOX_MAX_HEAD header bytes, SANDBOX_MAX_BODY
 * body bytes, Content-Length only: no chunked bodies, no folded headers).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dialflow/log.h"
#include "dialflow/sandbox.h"
#include "dialflow/strnum.h"

#define IDLE_MS		60000
#define STALL_MS	120000
#define MAX_TARGET_LEN	8192
#define OUT_INITIAL	4096
#define OUT_BACKLOG_MAX (16 * 1024 * 1024)

typedef struct conn {
	int fd;
	char *in; /* SANDBOX_MAX_HEAD + SANDBOX_MAX_BODY + 1 bytes */
	size_t in_len;
	char *out;
	size_t out_len;
	size_t out_off;
	size_t out_cap;
	int64_t last_ms;
	bool close_after; /* close once out is flushed           */
	bool stalled;	  /* a request that is never answered    */
	bool dead;
} conn_t;

struct sandbox_httpd {
	int lfd;
	conn_t *conns[SANDBOX_MAX_CONNS];
	size_t nconns;
	sandbox_handler_fn fn;
	void *app;
	arena_t *arena;
	/* what the last sandbox_httpd_pollfds() handed out, in order */
	bool listen_polled;
	conn_t *polled[SANDBOX_MAX_CONNS];
	size_t npolled;
};

/* A parsed request head. */
typedef struct head {
	char method[8];
	const char *target;
	size_t target_len;
	bool http10;
	bool keep_alive_hdr;
	bool close_hdr;
	bool has_cl;
	int64_t content_length;
	bool chunked;
	bool expect_continue;
	const char *auth;
	size_t auth_len;
	const char *ctype;
	size_t ctype_len;
} head_t;

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 501:
		return "Not Implemented";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return status >= 500 ? "Internal Server Error" : "Error";
	}
}

static int out_reserve(conn_t *c, size_t more)
{
	size_t cap = c->out_cap ? c->out_cap : OUT_INITIAL;
	char *p;

	if (c->out_len + more <= c->out_cap)
		return 0;
	while (cap < c->out_len + more)
		cap *= 2;
	p = realloc(c->out, cap);
	if (p == NULL)
		return -1;
	c->out = p;
	c->out_cap = cap;
	return 0;
}

static void out_add(conn_t *c, const char *s, size_t n)
{
	if (out_reserve(c, n) < 0) {
		log_error("sandbox", "out of memory queueing a response; closing the connection");
		c->dead = true;
		return;
	}
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
}

/* Queue a response. */
static void respond(conn_t *c, const sandbox_resp_t *r, bool close_after)
{
	char head[512];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nServer: dialflow-sandbox\r\nContent-Length: %zu\r\n"
		     "Connection: %s\r\n%s%s%s%s%s",
		     r->status, reason(r->status), r->body_len,
		     close_after ? "close" : "keep-alive", r->content_type ? "Content-Type: " : "",
		     r->content_type ? r->content_type : "", r->content_type ? "\r\n" : "",
		     r->extra_header ? r->extra_header : "", r->extra_header ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(head) - 2) {
		c->dead = true;
		return;
	}
	memcpy(head + n, "\r\n", 2);
	out_add(c, head, (size_t)n + 2);
	if (r->body_len > 0)
		out_add(c, r->body, r->body_len);
	if (close_after)
		c->close_after = true;
}

/* A short JSON error in Twilio's shape, then close the connection. */
static void respond_error_close(conn_t *c, int status, int code, const char *msg)
{
	char body[256];
	sandbox_resp_t r = {.status = status, .content_type = "application/json"};
	int n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\",\"status\":%d}", code,
			 msg, status);

	r.body = body;
	r.body_len = n > 0 ? (size_t)n : 0;
	respond(c, &r, true);
}

static bool token_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", ch);
}

/* Parse the head (len bytes ending before the blank line). Returns 0, or an HTTP status. */
static int parse_head(const char *buf, size_t len, head_t *h)
{
	const char *p = buf, *end = buf + len, *eol, *sp1, *sp2;

	memset(h, 0, sizeof(*h));
	eol = memmem(p, (size_t)(end - p), "\r\n", 2);
	if (eol == NULL)
		eol = end;
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	if (sp1 == NULL || sp1 == p || (size_t)(sp1 - p) >= sizeof(h->method))
		return 400;
	for (const char *m = p; m < sp1; m++)
		if (*m < 'A' || *m > 'Z')
			return 400;
	memcpy(h->method, p, (size_t)(sp1 - p));
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (sp2 == NULL || sp1[1] != '/' || (size_t)(sp2 - sp1 - 1) > MAX_TARGET_LEN)
		return 400;
	h->target = sp1 + 1;
	h->target_len = (size_t)(sp2 - sp1 - 1);
	for (size_t i = 0; i < h->target_len; i++)
		if ((unsigned char)h->target[i] <= 0x20 || (unsigned char)h->target[i] >= 0x7f)
			return 400;
	if ((size_t)(eol - sp2 - 1) == 8 && memcmp(sp2 + 1, "HTTP/1.1", 8) == 0)
		h->http10 = false;
	else if ((size_t)(eol - sp2 - 1) == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0)
		h->http10 = true;
	else
		return 505;
	p = eol + 2;
	while (p < end) {
		const char *colon, *v, *ve;
		size_t nlen;

		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (eol == NULL)
			eol = end;
		if (*p == ' ' || *p == '\t')
			return 400; /* obsolete line folding */
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL || colon == p)
			return 400;
		nlen = (size_t)(colon - p);
		for (size_t i = 0; i < nlen; i++)
			if (!token_char((unsigned char)p[i]))
				return 400;
		v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		ve = eol;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		for (const char *q = v; q < ve; q++)
			if ((unsigned char)*q < 0x20 && *q != '\t')
				return 400;
#define IS(name) (nlen == sizeof(name) - 1 && strncasecmp(p, name, nlen) == 0)
		if (IS("Content-Length")) {
			int64_t cl;

			if (h->has_cl || strnum_i64n(v, (size_t)(ve - v), 0, INT64_MAX, &cl) < 0)
				return 400;
			h->has_cl = true;
			h->content_length = cl;
		} else if (IS("Transfer-Encoding")) {
			h->chunked = true;
		} else if (IS("Authorization")) {
			h->auth = v;
			h->auth_len = (size_t)(ve - v);
		} else if (IS("Content-Type")) {
			h->ctype = v;
			h->ctype_len = (size_t)(ve - v);
		} else if (IS("Connection")) {
			if ((size_t)(ve - v) == 5 && strncasecmp(v, "close", 5) == 0)
				h->close_hdr = true;
			else if ((size_t)(ve - v) == 10 && strncasecmp(v, "keep-alive", 10) == 0)
				h->keep_alive_hdr = true;
		} else if (IS("Expect")) {
			if ((size_t)(ve - v) == 12 && strncasecmp(v, "100-continue", 12) == 0)
				h->expect_continue = true;
		}
#undef IS
		p = eol + 2;
	}
	return 0;
}

/*
 * Serve every complete request in the input buffer. Returns when more bytes
 * are needed, the connection is to be closed, or it stalled.
 */
static void serve(sandbox_httpd_t *h, conn_t *c)
{
	while (!c->dead && !c->stalled && !c->close_after && c->in_len > 0 &&
	       c->out_len - c->out_off < OUT_BACKLOG_MAX) {
		const char *blank = memmem(c->in, c->in_len, "\r\n\r\n", 4);
		sandbox_resp_t resp = {0};
		sandbox_req_t req = {0};
		size_t head_len, total;
		const char *q;
		head_t hd;
		int st;

		if (blank == NULL) {
			if (c->in_len >= SANDBOX_MAX_HEAD)
				respond_error_close(c, 431, 20400, "request head too large");
			return;
		}
		head_len = (size_t)(blank - c->in) + 4;
		if (head_len > SANDBOX_MAX_HEAD) {
			respond_error_close(c, 431, 20400, "request head too large");
			return;
		}
		st = parse_head(c->in, head_len - 4, &hd);
		if (st != 0) {
			respond_error_close(c, st, 20400, "malformed request");
			return;
		}
		if (hd.chunked) {
			respond_error_close(c, 501, 20400, "chunked bodies are not supported");
			return;
		}
		if (hd.content_length > SANDBOX_MAX_BODY) {
			respond_error_close(c, 413, 20400, "request body too large");
			return;
		}
		total = head_len + (size_t)hd.content_length;
		if (c->in_len < total) {
			if (hd.expect_continue && c->in_len == head_len) {
				static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

				out_add(c, cont, sizeof(cont) - 1);
			}
			return;
		}
		req.method = arena_strdup(h->arena, hd.method);
		q = memchr(hd.target, '?', hd.target_len);
		if (q != NULL) {
			req.path = arena_strndup(h->arena, hd.target, (size_t)(q - hd.target));
			req.query = arena_strndup(h->arena, q + 1,
						  hd.target_len - (size_t)(q - hd.target) - 1);
		} else {
			req.path = arena_strndup(h->arena, hd.target, hd.target_len);
			req.query = "";
		}
		req.authorization = hd.auth ? arena_strndup(h->arena, hd.auth, hd.auth_len) : NULL;
		req.content_type =
		    hd.ctype ? arena_strndup(h->arena, hd.ctype, hd.ctype_len) : NULL;
		req.body = arena_strndup(h->arena, c->in + head_len, (size_t)hd.content_length);
		req.body_len = (size_t)hd.content_length;
		h->fn(h->app, h->arena, &req, &resp);
		if (resp.stall) {
			c->stalled = true;
			c->in_len = 0;
		} else {
			respond(c, &resp, hd.close_hdr || (hd.http10 && !hd.keep_alive_hdr));
			memmove(c->in, c->in + total, c->in_len - total);
			c->in_len -= total;
		}
		arena_reset(h->arena);
	}
}

static void conn_close(sandbox_httpd_t *h, size_t i)
{
	conn_t *c = h->conns[i];

	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
	h->conns[i] = h->conns[--h->nconns];
}

static void flush_out(conn_t *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			c->dead = true;
			return;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	if (c->close_after)
		c->dead = true;
}

static void read_in(sandbox_httpd_t *h, conn_t *c)
{
	char sink[4096];

	for (;;) {
		size_t room = SANDBOX_MAX_HEAD + SANDBOX_MAX_BODY - c->in_len;
		ssize_t n;

		if (c->stalled || c->close_after)
			n = recv(c->fd, sink, sizeof(sink), 0); /* discard, watch for EOF */
		else if (room == 0)
			return; /* serve() has decided or will decide */
		else
			n = recv(c->fd, c->in + c->in_len, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			c->dead = true; /* EOF or error: the client is gone */
			return;
		}
		if (!c->stalled && !c->close_after)
			c->in_len += (size_t)n;
	}
	serve(h, c);
}

static void accept_all(sandbox_httpd_t *h)
{
	while (h->nconns < SANDBOX_MAX_CONNS) {
		int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		conn_t *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("sandbox", "accept: %s", strerror(errno));
			return;
		}
		c = calloc(1, sizeof(*c));
		if (c != NULL)
			c->in = malloc(SANDBOX_MAX_HEAD + SANDBOX_MAX_BODY + 1);
		if (c == NULL || c->in == NULL) {
			log_error("sandbox", "out of memory accepting a connection");
			free(c);
			close(fd);
			return;
		}
		c->fd = fd;
		c->last_ms = mono_ms();
		h->conns[h->nconns++] = c;
	}
}

sandbox_httpd_t *sandbox_httpd_new(int port, sandbox_handler_fn fn, void *app, int *bound)
{
	struct sockaddr_in sa;
	socklen_t slen = sizeof(sa);
	sandbox_httpd_t *h = calloc(1, sizeof(*h));
	int one = 1;

	if (h == NULL)
		return NULL;
	h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->lfd < 0)
		goto fail;
	setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(h->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(h->lfd, 128) < 0 ||
	    getsockname(h->lfd, (struct sockaddr *)&sa, &slen) < 0)
		goto fail;
	*bound = ntohs(sa.sin_port);
	h->fn = fn;
	h->app = app;
	h->arena = arena_new(65536);
	return h;
fail:
	log_error("sandbox", "cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
	if (h->lfd >= 0)
		close(h->lfd);
	free(h);
	return NULL;
}

void sandbox_httpd_free(sandbox_httpd_t *h)
{
	if (h == NULL)
		return;
	while (h->nconns > 0)
		conn_close(h, h->nconns - 1);
	close(h->lfd);
	arena_free(h->arena);
	free(h);
}

size_t sandbox_httpd_pollfds(sandbox_httpd_t *h, struct pollfd *fds, size_t max)
{
	size_t n = 0;
	int64_t now = mono_ms();

	/* Time out idle and stalled connections first. */
	for (size_t i = h->nconns; i-- > 0;) {
		conn_t *c = h->conns[i];

		if (c->dead || now - c->last_ms > (c->stalled ? STALL_MS : IDLE_MS))
			conn_close(h, i);
	}
	h->listen_polled = false;
	h->npolled = 0;
	if (n < max && h->nconns < SANDBOX_MAX_CONNS) {
		fds[n].fd = h->lfd;
		fds[n].events = POLLIN;
		fds[n].revents = 0;
		n++;
		h->listen_polled = true;
	}
	for (size_t i = 0; i < h->nconns && n < max; i++) {
		conn_t *c = h->conns[i];

		bool pending = c->out_len > c->out_off;
		/* Stop reading while the client does not read our answers, or while
		 * the input buffer is full (serve() consumes it as answers drain). */
		bool want_in = c->stalled || c->close_after ||
			       (c->out_len - c->out_off < OUT_BACKLOG_MAX &&
				c->in_len < SANDBOX_MAX_HEAD + SANDBOX_MAX_BODY);

		fds[n].fd = c->fd;
		fds[n].events = (short)((want_in ? POLLIN : 0) | (pending ? POLLOUT : 0));
		fds[n].revents = 0;
		h->polled[h->npolled++] = c;
		n++;
	}
	return n;
}

void sandbox_httpd_events(sandbox_httpd_t *h, const struct pollfd *fds, size_t n)
{
	size_t k = 0;
	bool accept_now = false;

	if (h->listen_polled && n > 0) {
		accept_now = (fds[0].revents & POLLIN) != 0;
		k = 1;
	}
	for (size_t i = 0; i < h->npolled && k < n; i++, k++) {
		conn_t *c = h->polled[i];
		short ev = fds[k].revents;

		if (ev == 0)
			continue;
		c->last_ms = mono_ms();
		if (ev & (POLLIN | POLLHUP | POLLERR))
			read_in(h, c);
		if (!c->dead && (c->out_len > c->out_off)) {
			flush_out(c);
			if (!c->dead && c->out_len == 0)
				serve(h, c); /* requests that waited for the backlog */
		}
	}
	/* Close the dead only now: the polled[] pointers above stay valid until here. */
	for (size_t i = h->nconns; i-- > 0;)
		if (h->conns[i]->dead)
			conn_close(h, i);
	if (accept_now)
		accept_all(h);
}
