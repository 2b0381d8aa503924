/* fake_provider.c - see fake_provider.h. */
#include "fake_provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "dialflow/arena.h"
#include "dialflow/err.h"
#include "dialflow/outbound.h"

#define FAKE_MAX_RULES 64

typedef struct fake_rule {
	char to[24]; /* "" = any number */
	int rc;
	int remaining; /* -1 = always */
} fake_rule_t;

struct fake_provider {
	provider_t provider;
	int latency_ms;
	int nrules;
	fake_rule_t rules[FAKE_MAX_RULES];
	int fetch_rc;
	int fetch_http;
	char fetch_status[32];
	int fetch_duration;
	/* updated with atomics by any process */
	int ncalls;   /* slots handed out */
	int nhangups; /* hang-up requests */
	int nredirects;
	int nfetches;
	int in_flight;
	unsigned seq;
	int ready[FAKE_MAX_CALLS]; /* slot i is fully written */
	fake_call_t calls[FAKE_MAX_CALLS];
};

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	if (ms > 0)
		nanosleep(&ts, NULL);
}

/* The scripted outcome of a call to `to`, consuming one use of the rule that applies. */
static int scripted(fake_provider_t *fp, const char *to)
{
	for (int i = 0; i < fp->nrules; i++) {
		fake_rule_t *r = &fp->rules[i];

		if (r->to[0] != '\0' && strcmp(r->to, to) != 0)
			continue;
		if (r->remaining < 0)
			return r->rc;
		if (__atomic_load_n(&r->remaining, __ATOMIC_SEQ_CST) <= 0)
			continue;
		if (__atomic_sub_fetch(&r->remaining, 1, __ATOMIC_SEQ_CST) >= 0)
			return r->rc;
	}
	return PROVIDER_OK;
}

static int fake_place(provider_t *p, const provider_call_req_t *req, provider_call_res_t *res)
{
	fake_provider_t *fp = p->impl;
	int rc, slot;
	unsigned seq;
	fake_call_t *c;

	__atomic_add_fetch(&fp->in_flight, 1, __ATOMIC_SEQ_CST);
	pause_ms(fp->latency_ms);
	rc = scripted(fp, req->to);
	if (rc == PROVIDER_ERR_REJECTED || rc == PROVIDER_ERR_TRANSIENT) {
		res->http_status = rc == PROVIDER_ERR_REJECTED ? 400 : 503;
		if (rc == PROVIDER_ERR_REJECTED) {
			snprintf(res->error_code, sizeof(res->error_code), "21211");
			snprintf(res->error_message, sizeof(res->error_message),
				 "The 'To' number is not a valid phone number.");
		}
		goto out;
	}
	/* OK, or UNKNOWN: a call the provider may hold, recorded as placed */
	seq = __atomic_add_fetch(&fp->seq, 1, __ATOMIC_SEQ_CST);
	slot = __atomic_fetch_add(&fp->ncalls, 1, __ATOMIC_SEQ_CST);
	if (slot >= FAKE_MAX_CALLS) {
		rc = PROVIDER_ERR_REJECTED;
		goto out;
	}
	c = &fp->calls[slot];
	snprintf(c->sid, sizeof(c->sid), "CAfake%dx%u", (int)getpid(), seq);
	snprintf(c->to, sizeof(c->to), "%s", req->to);
	snprintf(c->from, sizeof(c->from), "%s", req->from ? req->from : "");
	snprintf(c->answer_url, sizeof(c->answer_url), "%s", req->answer_url);
	snprintf(c->status_url, sizeof(c->status_url), "%s", req->status_url);
	c->job_id = req->job_id;
	c->amd = req->amd;
	snprintf(c->amd_url, sizeof(c->amd_url), "%s",
		 req->amd && req->amd_url ? req->amd_url : "");
	c->placed_us = mono_us();
	c->pid = getpid();
	__atomic_store_n(&fp->ready[slot], 1, __ATOMIC_RELEASE);
	if (rc == PROVIDER_OK) {
		snprintf(res->call_sid, sizeof(res->call_sid), "%s", c->sid);
		snprintf(res->status, sizeof(res->status), "queued");
		res->http_status = 201;
	}
out:
	__atomic_sub_fetch(&fp->in_flight, 1, __ATOMIC_SEQ_CST);
	return rc;
}

static fake_call_t *find(fake_provider_t *fp, const char *sid)
{
	int n = __atomic_load_n(&fp->ncalls, __ATOMIC_SEQ_CST);

	for (int i = 0; i < n && i < FAKE_MAX_CALLS; i++)
		if (__atomic_load_n(&fp->ready[i], __ATOMIC_ACQUIRE) &&
		    strcmp(fp->calls[i].sid, sid) == 0)
			return &fp->calls[i];
	return NULL;
}

static int fake_hangup(provider_t *p, const char *sid, provider_call_res_t *res)
{
	fake_provider_t *fp = p->impl;
	fake_call_t *c = find(fp, sid);

	pause_ms(fp->latency_ms);
	__atomic_add_fetch(&fp->nhangups, 1, __ATOMIC_SEQ_CST);
	if (c == NULL) {
		res->http_status = 404;
		return PROVIDER_ERR_REJECTED;
	}
	__atomic_add_fetch(&c->hangups, 1, __ATOMIC_SEQ_CST);
	snprintf(res->status, sizeof(res->status), "completed");
	res->http_status = 200;
	return PROVIDER_OK;
}

static int fake_redirect(provider_t *p, const char *sid, const char *url, provider_call_res_t *res)
{
	fake_provider_t *fp = p->impl;
	fake_call_t *c = find(fp, sid);

	pause_ms(fp->latency_ms);
	__atomic_add_fetch(&fp->nredirects, 1, __ATOMIC_SEQ_CST);
	if (c == NULL || url == NULL) {
		res->http_status = 404;
		return PROVIDER_ERR_REJECTED;
	}
	/* one writer per call at a time: the worker's AMD claim stamps the job */
	snprintf(c->redirect_url, sizeof(c->redirect_url), "%s", url);
	__atomic_add_fetch(&c->redirects, 1, __ATOMIC_SEQ_CST);
	snprintf(res->status, sizeof(res->status), "in-progress");
	res->http_status = 200;
	return PROVIDER_OK;
}

static int fake_fetch(provider_t *p, const char *sid, provider_call_res_t *res)
{
	fake_provider_t *fp = p->impl;

	(void)sid;
	pause_ms(fp->latency_ms);
	__atomic_add_fetch(&fp->nfetches, 1, __ATOMIC_SEQ_CST);
	res->http_status = fp->fetch_http;
	if (fp->fetch_rc != PROVIDER_OK)
		return fp->fetch_rc;
	snprintf(res->status, sizeof(res->status), "%s", fp->fetch_status);
	res->duration = fp->fetch_duration;
	return PROVIDER_OK;
}

static void fake_free(provider_t *p)
{
	(void)p; /* the mapping belongs to the test: fake_provider_free() */
}

static const provider_ops_t fake_ops = {
    .name = "fake",
    .place_call = fake_place,
    .hangup = fake_hangup,
    .fetch_status = fake_fetch,
    .redirect = fake_redirect,
    .free = fake_free,
};

fake_provider_t *fake_provider_new(void)
{
	fake_provider_t *fp =
	    mmap(NULL, sizeof(*fp), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (fp == MAP_FAILED)
		return NULL;
	memset(fp, 0, sizeof(*fp));
	fp->provider.ops = &fake_ops;
	fp->provider.impl = fp;
	fp->fetch_rc = PROVIDER_OK;
	fp->fetch_http = 200;
	snprintf(fp->fetch_status, sizeof(fp->fetch_status), "completed");
	fp->fetch_duration = 12;
	return fp;
}

void fake_provider_free(fake_provider_t *fp)
{
	if (fp != NULL)
		munmap(fp, sizeof(*fp));
}

provider_t *fake_provider_get(fake_provider_t *fp)
{
	return &fp->provider;
}

void fake_provider_script(fake_provider_t *fp, const char *to, int rc, int times)
{
	fake_rule_t *r;

	if (fp->nrules >= FAKE_MAX_RULES)
		abort();
	r = &fp->rules[fp->nrules];
	snprintf(r->to, sizeof(r->to), "%s", to ? to : "");
	r->rc = rc;
	r->remaining = times;
	__atomic_add_fetch(&fp->nrules, 1, __ATOMIC_SEQ_CST);
}

void fake_provider_set_latency(fake_provider_t *fp, int ms)
{
	fp->latency_ms = ms;
}

void fake_provider_set_fetch(fake_provider_t *fp, int rc, int http_status, const char *status,
			     int duration)
{
	fp->fetch_rc = rc;
	fp->fetch_http = http_status;
	snprintf(fp->fetch_status, sizeof(fp->fetch_status), "%s", status ? status : "");
	fp->fetch_duration = duration;
}

int fake_provider_ncalls(fake_provider_t *fp)
{
	int n = __atomic_load_n(&fp->ncalls, __ATOMIC_SEQ_CST);

	return n < FAKE_MAX_CALLS ? n : FAKE_MAX_CALLS;
}

bool fake_provider_call(fake_provider_t *fp, int i, fake_call_t *out)
{
	if (i < 0 || i >= fake_provider_ncalls(fp) ||
	    !__atomic_load_n(&fp->ready[i], __ATOMIC_ACQUIRE))
		return false;
	*out = fp->calls[i];
	out->hangups = __atomic_load_n(&fp->calls[i].hangups, __ATOMIC_SEQ_CST);
	return true;
}

int fake_provider_calls_to(fake_provider_t *fp, const char *to)
{
	int n = fake_provider_ncalls(fp), count = 0;

	for (int i = 0; i < n; i++)
		if (__atomic_load_n(&fp->ready[i], __ATOMIC_ACQUIRE) &&
		    strcmp(fp->calls[i].to, to) == 0)
			count++;
	return count;
}

int fake_provider_nhangups(fake_provider_t *fp)
{
	return __atomic_load_n(&fp->nhangups, __ATOMIC_SEQ_CST);
}

int fake_provider_nredirects(fake_provider_t *fp)
{
	return __atomic_load_n(&fp->nredirects, __ATOMIC_SEQ_CST);
}

int fake_provider_redirects_of(fake_provider_t *fp, const char *sid, char *url, size_t urlsz)
{
	fake_call_t *c = find(fp, sid);
	int n = c ? __atomic_load_n(&c->redirects, __ATOMIC_SEQ_CST) : 0;

	if (url != NULL && urlsz > 0)
		snprintf(url, urlsz, "%s", n > 0 ? c->redirect_url : "");
	return n;
}

int fake_provider_hangups_of(fake_provider_t *fp, const char *sid)
{
	fake_call_t *c = find(fp, sid);

	return c ? __atomic_load_n(&c->hangups, __ATOMIC_SEQ_CST) : 0;
}

int fake_provider_nfetches(fake_provider_t *fp)
{
	return __atomic_load_n(&fp->nfetches, __ATOMIC_SEQ_CST);
}

int fake_provider_in_flight(fake_provider_t *fp)
{
	return __atomic_load_n(&fp->in_flight, __ATOMIC_SEQ_CST);
}

int fake_provider_emit(db_t *db, const char *sid, const char *status, int duration, bool *changed)
{
	arena_t *a = arena_new(4096);
	int rc = db_begin(db);

	if (rc == 0)
		rc = outbound_call_event(db, a, sid, status, duration, NULL, NULL, changed);
	if (rc == 0)
		rc = db_commit(db);
	if (rc < 0)
		db_rollback(db);
	arena_free(a);
	return rc;
}
