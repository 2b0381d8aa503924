/* apitest.c - see apitest.h. */
#include "apitest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dialflow/auth.h"
#include "dialflow/http.h"

void at_ctx_init(api_ctx_t *ctx, char *secret)
{
	at_ctx_init_named(ctx, secret, "itest_api");
}

void at_ctx_init_named(api_ctx_t *ctx, char *secret, const char *application_name)
{
	char path[] = "/tmp/itest-api-secret-XXXXXX";
	const char *err = NULL;
	int fd;

	/* the first context makes the secret; the others share it, as one deployment */
	if (secret[0] == '\0')
		assert_int_equal(auth_random_token(secret, 64, 24), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, secret, strlen(secret)), (ssize_t)strlen(secret));
	close(fd);
	setenv("DIALFLOW_JWT_SECRET_FILE", path, 1);
	setenv("DIALFLOW_API_DATABASE_URL", itest_db_url(), 1);
	unsetenv("DIALFLOW_API_DB_ROLE"); /* dialflow_app, as in production */
	if (api_ctx_init(ctx, application_name, &err) < 0)
		fail_msg("api_ctx_init: %s", err);
	unlink(path);
}

void at_ctx_free(api_ctx_t *ctx)
{
	api_ctx_free(ctx);
}

char *at_token(api_ctx_t *ctx, int64_t user)
{
	char *t =
	    auth_jwt_issue(ctx->keys, &ctx->policy, ctx->cfg.jwt_kid, user, 1, 900, time(NULL));

	assert_non_null(t);
	return t;
}

at_resp_t at_call(api_ctx_t *ctx, const char *method, const char *uri, const char *token,
		  const char *ctype, const char *body, const char *extra, const char *request_id)
{
	arena_t *a = arena_new(16384);
	http_request_t req;
	char auth[1200];
	const char *envp[3] = {NULL, NULL, NULL};
	const char *q = strchr(uri, '?');
	at_resp_t out;
	int n = 0;

	memset(&out, 0, sizeof(out));
	memset(&req, 0, sizeof(req));
	req.arena = a;
	req.method = http_method_parse(method);
	req.method_name = method;
	req.path = q ? arena_strndup(a, uri, (size_t)(q - uri)) : uri;
	req.query = q ? q + 1 : "";
	req.content_type = ctype;
	req.body_type = http_body_type(ctype);
	req.body = body ? body : "";
	req.body_len = body ? strlen(body) : 0;
	req.remote_addr = "127.0.0.1";
	req.request_id = request_id ? request_id : "apitest";
	if (token != NULL) {
		snprintf(auth, sizeof(auth), "HTTP_AUTHORIZATION=Bearer %s", token);
		envp[n++] = auth;
	}
	if (extra != NULL)
		envp[n++] = extra;
	req.envp = envp;
	api_dispatch(ctx, &req);
	out.status = req.status;
	if (req.resp_body != NULL && req.resp_len > 0)
		out.json = json_loadb(req.resp_body, req.resp_len, 0, NULL);
	for (int i = 0; i < req.resp_nheaders; i++)
		if (strcmp(req.resp_hname[i], "Retry-After") == 0)
			snprintf(out.retry_after, sizeof(out.retry_after), "%s",
				 req.resp_hvalue[i]);
	arena_free(a);
	return out;
}

at_resp_t at_json(api_ctx_t *ctx, const char *method, const char *uri, const char *token,
		  const char *json)
{
	return at_call(ctx, method, uri, token, json ? "application/json" : NULL, json, NULL, NULL);
}

void at_free(at_resp_t *r)
{
	json_decref(r->json);
	r->json = NULL;
}

json_t *at_get(const at_resp_t *r, const char *path)
{
	char buf[128], *save = NULL, *tok;
	json_t *v = r->json;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok != NULL && v != NULL;
	     tok = strtok_r(NULL, ".", &save)) {
		if (json_is_array(v))
			v = json_array_get(v, (size_t)strtoul(tok, NULL, 10));
		else
			v = json_object_get(v, tok);
	}
	return v;
}

static void fail_at(const at_resp_t *r, const char *what, const char *path)
{
	char *s = r->json ? json_dumps(r->json, JSON_COMPACT) : NULL;

	fail_msg("%s is not %s in %s", path, what, s ? s : "(no body)");
}

int64_t at_int(const at_resp_t *r, const char *path)
{
	json_t *v = at_get(r, path);

	if (!json_is_integer(v))
		fail_at(r, "an integer", path);
	return json_integer_value(v);
}

const char *at_str(const at_resp_t *r, const char *path)
{
	json_t *v = at_get(r, path);

	if (!json_is_string(v))
		fail_at(r, "a string", path);
	return json_string_value(v);
}

void at_expect_status(const at_resp_t *r, int want, const char *file, int line)
{
	if (r->status != want) {
		char *s = r->json ? json_dumps(r->json, JSON_COMPACT) : NULL;

		fail_msg("%s:%d: status %d, want %d: %s", file, line, r->status, want,
			 s ? s : "(no body)");
	}
}

void at_expect_error(const at_resp_t *r, int status, const char *code, const char *file, int line)
{
	at_expect_status(r, status, file, line);
	if (strcmp(at_str(r, "error.code"), code) != 0)
		fail_msg("%s:%d: error.code %s, want %s", file, line, at_str(r, "error.code"),
			 code);
}
