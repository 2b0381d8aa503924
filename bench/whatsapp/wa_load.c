/*
 * wa_load.c - the load generator of bench/whatsapp/run: N sender threads POST
 * signed, Meta-shaped WhatsApp Cloud API webhooks (one text message each,
 * a unique wamid per request) to POST /webhooks/whatsapp through nginx, as
 * fast as the answers come back, and record every latency.
 *
 * Each thread has its own libcurl easy handle (one kept-alive TLS connection
 * to nginx; certificate verification off: it is the stack's own self-signed
 * dev certificate) and cycles over its own CONTACTS wa_ids, so messages of
 * one contact are serialised by the sender as Meta does, the per-contact row
 * locks are real, and no single row is hot. The signature is computed here
 * with OpenSSL's HMAC-SHA256 over the exact bytes sent, independently of
 * the server's code.
 *
 * Timeline: WARMUP seconds whose requests are sent but not measured, then
 * DURATION seconds measured (a request counts when it completes inside the
 * window). Output, one "BENCH key value" a line:
 *   threads contacts_per_thread duration_s
 *   requests          completed in the window
 *   msgs_per_s        200 answers that stored their message, per second
 *   non200 errors     answers other than 200 / transport failures (window)
 *   not_stored        200 answers that did not store (duplicates: must be 0)
 *   p50_ms p90_ms p99_ms max_ms mean_ms   latency of every request in the window
 *   accepted_total    200 + stored answers over the whole run (warm-up included)
 *   sent_total        requests sent over the whole run
 * and "BENCH status_<code> n" for every non-200 code seen.
 *
 *   wa_load --url URL --secret S --pnid ID [--threads 32] [--contacts 200]
 *           [--duration 20] [--warmup 2] [--tag T] [--wa-base 4915000000000]
 *           [--text "go ..."] [--per-thread N]
 *
 * --per-thread N sends exactly N requests per thread and counts them all (no
 * window): bench/whatsapp/run primes every contact's flow with it (N = contacts).
 * wa_id of contact k of thread t: wa-base + t * contacts + k (the pgbench
 * reference picks from the same pool). wamids: wamid.bench.<tag>.<t>.<seq>.
 * It asserts nothing about time; the exit status is 0 when every request got
 * an answer (whatever its code), 2 on bad arguments, 1 on a setup failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MAX_THREADS 512
#define BODY_MAX    2048
#define RESP_MAX    1024
#define MAX_CODES   600

static struct {
	const char *url, *secret, *pnid, *tag, *text;
	int threads, contacts;
	long per_thread; /* > 0: send exactly this many per thread, no time window */
	double duration, warmup;
	uint64_t wa_base;
	double t0; /* monotonic start, seconds */
} cfg = {.threads = 32,
	 .contacts = 200,
	 .duration = 20,
	 .warmup = 2,
	 .tag = "0",
	 .text = "go bench",
	 .wa_base = 4915000000000ULL};

typedef struct worker {
	int id;
	pthread_t th;
	/* latencies (us) of the requests that completed in the window */
	uint32_t *lat;
	size_t nlat, caplat;
	uint64_t requests, stored_win, non200, errors, not_stored;
	uint64_t accepted_total, sent_total;
	uint64_t codes[MAX_CODES];
	char resp[RESP_MAX];
	size_t resp_len;
	int fatal;
} worker_t;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	worker_t *w = ud;
	size_t len = size * n, room = RESP_MAX - 1 - w->resp_len;

	if (len > room)
		len = room;
	memcpy(w->resp + w->resp_len, p, len);
	w->resp_len += len;
	w->resp[w->resp_len] = '\0';
	return size * n;
}

/* "sha256=" + hex HMAC-SHA256(secret, body) into out (72 bytes). */
static int sign(const char *body, size_t len, char *out)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	static const char hex[] = "0123456789abcdef";

	if (HMAC(EVP_sha256(), cfg.secret, (int)strlen(cfg.secret), (const unsigned char *)body,
		 len, mac, &maclen) == NULL ||
	    maclen != 32)
		return -1;
	memcpy(out, "sha256=", 7);
	for (unsigned int i = 0; i < maclen; i++) {
		out[7 + 2 * i] = hex[mac[i] >> 4];
		out[8 + 2 * i] = hex[mac[i] & 15];
	}
	out[7 + 2 * maclen] = '\0';
	return 0;
}

static void lat_push(worker_t *w, uint32_t us)
{
	if (w->nlat == w->caplat) {
		size_t cap = w->caplat ? w->caplat * 2 : 65536;
		uint32_t *p = realloc(w->lat, cap * sizeof(*p));

		if (p == NULL)
			return; /* keep counting; the percentile loses a sample */
		w->lat = p;
		w->caplat = cap;
	}
	w->lat[w->nlat++] = us;
}

static void *sender(void *arg)
{
	worker_t *w = arg;
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char body[BODY_MAX], sighdr[96], sig[80];
	double wstart = cfg.t0 + cfg.warmup, wend = wstart + cfg.duration;
	uint64_t seq = 0;

	if (h == NULL) {
		w->fatal = 1;
		return NULL;
	}
	curl_easy_setopt(h, CURLOPT_URL, cfg.url);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	for (;;) {
		int k = (int)(seq % (uint64_t)cfg.contacts);
		uint64_t wa = cfg.wa_base + (uint64_t)w->id * (uint64_t)cfg.contacts + (uint64_t)k;
		long code = 0;
		double t1, t2;
		CURLcode rc;
		int n;

		t1 = now_s();
		if (cfg.per_thread > 0 ? seq >= (uint64_t)cfg.per_thread : t1 >= wend)
			break;
		n = snprintf(body, sizeof(body),
			     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":"
			     "\"102290129340398\",\"changes\":[{\"field\":\"messages\",\"value\":{"
			     "\"messaging_product\":\"whatsapp\",\"metadata\":{"
			     "\"display_phone_number\":\"15550001111\",\"phone_number_id\":\"%s\"},"
			     "\"contacts\":[{\"profile\":{\"name\":\"Bench %d-%d\"},\"wa_id\":"
			     "\"%" PRIu64 "\"}],\"messages\":[{\"from\":\"%" PRIu64 "\",\"id\":"
			     "\"wamid.bench.%s.%d.%" PRIu64 "\",\"timestamp\":\"%lld\",\"type\":"
			     "\"text\",\"text\":{\"body\":\"%s %" PRIu64 "\"}}]}}]}]}",
			     cfg.pnid, w->id, k, wa, wa, cfg.tag, w->id, seq, (long long)time(NULL),
			     cfg.text, seq);
		seq++;
		if (n <= 0 || (size_t)n >= sizeof(body) || sign(body, (size_t)n, sig) < 0) {
			w->fatal = 1;
			break;
		}
		snprintf(sighdr, sizeof(sighdr), "X-Hub-Signature-256: %s", sig);
		curl_slist_free_all(hdrs);
		hdrs = curl_slist_append(NULL, "Content-Type: application/json");
		hdrs = curl_slist_append(hdrs, "Expect:");
		hdrs = curl_slist_append(hdrs, sighdr);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)n);
		w->resp_len = 0;
		w->resp[0] = '\0';
		rc = curl_easy_perform(h);
		t2 = now_s();
		w->sent_total++;
		if (rc == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		bool stored =
		    rc == CURLE_OK && code == 200 && strstr(w->resp, "\"stored\":1") != NULL;
		if (stored)
			w->accepted_total++;
		if (cfg.per_thread <= 0 && (t2 < wstart || t2 > wend))
			continue;
		w->requests++;
		lat_push(w, (uint32_t)((t2 - t1) * 1e6));
		if (rc != CURLE_OK) {
			w->errors++;
		} else if (code != 200) {
			w->non200++;
			if (code > 0 && code < MAX_CODES)
				w->codes[code]++;
		} else if (!stored) {
			w->not_stored++;
		} else {
			w->stored_win++;
		}
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static double pct_ms(const uint32_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

static void usage(void)
{
	fprintf(stderr, "usage: wa_load --url URL --secret S --pnid ID [--threads N] "
			"[--contacts N] [--duration S] [--warmup S] [--tag T] [--wa-base N] "
			"[--text T] [--per-thread N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static worker_t ws[MAX_THREADS];
	uint64_t requests = 0, stored = 0, non200 = 0, errors = 0, not_stored = 0, accepted = 0,
		 sent = 0, codes[MAX_CODES] = {0};
	size_t nlat = 0, k = 0;
	uint32_t *all;
	double sum = 0;
	int fatal = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		if (strcmp(a, "--url") == 0)
			cfg.url = v;
		else if (strcmp(a, "--secret") == 0)
			cfg.secret = v;
		else if (strcmp(a, "--pnid") == 0)
			cfg.pnid = v;
		else if (strcmp(a, "--tag") == 0)
			cfg.tag = v;
		else if (strcmp(a, "--text") == 0)
			cfg.text = v;
		else if (strcmp(a, "--threads") == 0)
			cfg.threads = atoi(v);
		else if (strcmp(a, "--contacts") == 0)
			cfg.contacts = atoi(v);
		else if (strcmp(a, "--duration") == 0)
			cfg.duration = atof(v);
		else if (strcmp(a, "--warmup") == 0)
			cfg.warmup = atof(v);
		else if (strcmp(a, "--per-thread") == 0)
			cfg.per_thread = atol(v);
		else if (strcmp(a, "--wa-base") == 0)
			cfg.wa_base = strtoull(v, NULL, 10);
		else
			usage();
		i++;
	}
	if (cfg.url == NULL || cfg.secret == NULL || cfg.pnid == NULL || cfg.threads < 1 ||
	    cfg.threads > MAX_THREADS || cfg.contacts < 1 || cfg.duration <= 0 || cfg.warmup < 0 ||
	    strchr(cfg.text, '"') != NULL || strchr(cfg.text, '\\') != NULL)
		usage();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "wa_load: curl_global_init failed\n");
		return 1;
	}
	cfg.t0 = now_s();
	for (int i = 0; i < cfg.threads; i++) {
		ws[i].id = i;
		if (pthread_create(&ws[i].th, NULL, sender, &ws[i]) != 0) {
			fprintf(stderr, "wa_load: pthread_create: %s\n", strerror(errno));
			return 1;
		}
	}
	for (int i = 0; i < cfg.threads; i++) {
		pthread_join(ws[i].th, NULL);
		requests += ws[i].requests;
		stored += ws[i].stored_win;
		non200 += ws[i].non200;
		errors += ws[i].errors;
		not_stored += ws[i].not_stored;
		accepted += ws[i].accepted_total;
		sent += ws[i].sent_total;
		nlat += ws[i].nlat;
		fatal |= ws[i].fatal;
		for (int c = 0; c < MAX_CODES; c++)
			codes[c] += ws[i].codes[c];
	}
	if (cfg.per_thread > 0)
		cfg.duration = now_s() - cfg.t0; /* the whole run was the window */
	all = malloc((nlat ? nlat : 1) * sizeof(*all));
	if (all == NULL)
		return 1;
	for (int i = 0; i < cfg.threads; i++) {
		memcpy(all + k, ws[i].lat, ws[i].nlat * sizeof(*all));
		k += ws[i].nlat;
		free(ws[i].lat);
	}
	qsort(all, nlat, sizeof(*all), cmp_u32);
	for (size_t i = 0; i < nlat; i++)
		sum += all[i];
	printf("BENCH threads %d\n", cfg.threads);
	printf("BENCH contacts_per_thread %d\n", cfg.contacts);
	printf("BENCH duration_s %.1f\n", cfg.duration);
	printf("BENCH requests %" PRIu64 "\n", requests);
	printf("BENCH msgs_per_s %.1f\n", (double)stored / cfg.duration);
	printf("BENCH non200 %" PRIu64 "\n", non200);
	printf("BENCH errors %" PRIu64 "\n", errors);
	printf("BENCH not_stored %" PRIu64 "\n", not_stored);
	printf("BENCH p50_ms %.2f\n", pct_ms(all, nlat, 0.50));
	printf("BENCH p90_ms %.2f\n", pct_ms(all, nlat, 0.90));
	printf("BENCH p99_ms %.2f\n", pct_ms(all, nlat, 0.99));
	printf("BENCH max_ms %.2f\n", nlat ? all[nlat - 1] / 1000.0 : 0);
	printf("BENCH mean_ms %.2f\n", nlat ? sum / (double)nlat / 1000.0 : 0);
	printf("BENCH accepted_total %" PRIu64 "\n", accepted);
	printf("BENCH sent_total %" PRIu64 "\n", sent);
	for (int c = 0; c < MAX_CODES; c++)
		if (codes[c] > 0)
			printf("BENCH status_%d %" PRIu64 "\n", c, codes[c]);
	free(all);
	curl_global_cleanup();
	return fatal ? 1 : 0;
}
