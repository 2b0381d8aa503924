/*
 * test_openapi_routes.c - docs/openapi.yaml and the router agree: every route
 * of every table in api_route_tables (src/api/routes.c) is a spec path with
 * the same methods, and every spec path + method is a route.
 *
 * The spec is read as text, not as YAML in general: its path keys are the
 * two-space-indented "/...:" lines under the top-level "paths:", and their
 * operations the four-space-indented "get:", "post:"... lines under each.
 * A router pattern's typed segment "{id:int}" is the spec's "{id}".
 *
 * The spec is found at $DIALFLOW_SOURCE_DIR/docs/openapi.yaml, or under the
 * source directory of the build (VPATH and distcheck included).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/testutil.h"
#include "dialflow/api.h"
#include "dialflow/router.h"

#ifndef DIALFLOW_SOURCE_DIR
#define DIALFLOW_SOURCE_DIR "."
#endif

#define MAX_PATHS 256

typedef struct {
	char path[256];
	unsigned methods; /* HTTP_* */
} entry_t;

static entry_t spec[MAX_PATHS];
static size_t nspec;
static entry_t router[MAX_PATHS];
static size_t nrouter;

static const struct {
	const char *name;
	unsigned bit;
} method_names[] = {
    {"get", HTTP_GET},	     {"post", HTTP_POST}, {"put", HTTP_PUT},	     {"patch", HTTP_PATCH},
    {"delete", HTTP_DELETE}, {"head", HTTP_HEAD}, {"options", HTTP_OPTIONS},
};
#define NMETHODS (sizeof(method_names) / sizeof(method_names[0]))

static void methods_str(unsigned m, char *out, size_t cap)
{
	out[0] = '\0';
	for (size_t i = 0; i < NMETHODS; i++) {
		if (m & method_names[i].bit) {
			if (out[0] != '\0')
				strncat(out, ",", cap - strlen(out) - 1);
			strncat(out, method_names[i].name, cap - strlen(out) - 1);
		}
	}
	if (out[0] == '\0')
		snprintf(out, cap, "(none)");
}

static entry_t *find(entry_t *list, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].path, path) == 0)
			return &list[i];
	return NULL;
}

static entry_t *add(entry_t *list, size_t *n, const char *path)
{
	entry_t *e = find(list, *n, path);

	if (e != NULL)
		return e;
	assert_true(*n < MAX_PATHS);
	e = &list[(*n)++];
	assert_true(strlen(path) < sizeof(e->path));
	snprintf(e->path, sizeof(e->path), "%s", path);
	e->methods = 0;
	return e;
}

/* "/api/runs/{id:int}/jobs" -> "/api/runs/{id}/jobs" */
static void spec_form(const char *pattern, char *out, size_t cap)
{
	size_t o = 0;
	bool in_brace = false, skip = false;

	for (const char *p = pattern; *p != '\0' && o + 1 < cap; p++) {
		if (*p == '{') {
			in_brace = true;
			skip = false;
		} else if (*p == '}') {
			in_brace = false;
			skip = false;
		} else if (in_brace && *p == ':') {
			skip = true;
		}
		if (!skip)
			out[o++] = *p;
	}
	out[o] = '\0';
}

static void load_router(void)
{
	char path[256];

	nrouter = 0;
	for (size_t t = 0; t < api_ntables; t++) {
		const api_route_table_t *tab = &api_route_tables[t];

		for (size_t i = 0; i < *tab->n; i++) {
			spec_form(tab->routes[i].pattern, path, sizeof(path));
			add(router, &nrouter, path)->methods |= tab->routes[i].methods;
		}
	}
}

static char *spec_file(void)
{
	const char *dir = getenv("DIALFLOW_SOURCE_DIR");
	char *file;

	if (dir == NULL || dir[0] == '\0')
		dir = DIALFLOW_SOURCE_DIR;
	assert_true(asprintf(&file, "%s/docs/openapi.yaml", dir) > 0);
	return file;
}

static void load_spec(void)
{
	char *file = spec_file();
	FILE *f = fopen(file, "r");
	char line[1024];
	bool in_paths = false;
	entry_t *cur = NULL;

	if (f == NULL)
		fail_msg("cannot open %s (set DIALFLOW_SOURCE_DIR to the source tree)", file);
	nspec = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] != ' ' && line[0] != '#' && line[0] != '\0') {
			/* a top-level key */
			in_paths = strcmp(line, "paths:") == 0;
			cur = NULL;
			continue;
		}
		if (!in_paths)
			continue;
		if (strncmp(line, "  /", 3) == 0) {
			char *colon = strrchr(line, ':');

			assert_non_null(colon);
			assert_string_equal(colon, ":");
			*colon = '\0';
			if (find(spec, nspec, line + 2) != NULL)
				fail_msg("%s: path %s is listed twice", file, line + 2);
			cur = add(spec, &nspec, line + 2);
			continue;
		}
		if (cur != NULL && strncmp(line, "    ", 4) == 0 && line[4] != ' ') {
			for (size_t i = 0; i < NMETHODS; i++) {
				size_t n = strlen(method_names[i].name);

				if (strncmp(line + 4, method_names[i].name, n) == 0 &&
				    line[4 + n] == ':') {
					cur->methods |= method_names[i].bit;
				}
			}
		}
	}
	fclose(f);
	free(file);
}

static void test_spec_parses(void **state)
{
	(void)state;
	load_spec();
	/* the file's structure is what this test expects: many paths, each with operations */
	assert_true(nspec >= 10);
	for (size_t i = 0; i < nspec; i++)
		if (spec[i].methods == 0)
			fail_msg("spec path %s has no operation", spec[i].path);
	assert_non_null(find(spec, nspec, "/api/health"));
}

static void test_pattern_spec_form(void **state)
{
	(void)state;
	char out[128];

	spec_form("/api/outbound_calls/runs/{id:int}/jobs", out, sizeof(out));
	assert_string_equal(out, "/api/outbound_calls/runs/{id}/jobs");
	spec_form("/api/x/{a:int}/{b:str}", out, sizeof(out));
	assert_string_equal(out, "/api/x/{a}/{b}");
	spec_form("/api/health", out, sizeof(out));
	assert_string_equal(out, "/api/health");
}

static void test_every_route_in_spec(void **state)
{
	(void)state;
	char want[64], have[64];
	int bad = 0;

	load_spec();
	load_router();
	assert_true(nrouter > 0);
	for (size_t i = 0; i < nrouter; i++) {
		entry_t *s = find(spec, nspec, router[i].path);

		methods_str(router[i].methods, want, sizeof(want));
		if (s == NULL) {
			print_error("route %s (%s) is not in docs/openapi.yaml\n", router[i].path,
				    want);
			bad++;
		} else if ((s->methods & router[i].methods) != router[i].methods) {
			methods_str(s->methods, have, sizeof(have));
			print_error("route %s: the router has %s, the spec %s\n", router[i].path,
				    want, have);
			bad++;
		}
	}
	if (bad > 0)
		fail_msg("%d route(s) missing from the spec", bad);
}

static void test_every_spec_path_routed(void **state)
{
	(void)state;
	char want[64], have[64];
	int bad = 0;

	load_spec();
	load_router();
	for (size_t i = 0; i < nspec; i++) {
		entry_t *r = find(router, nrouter, spec[i].path);

		methods_str(spec[i].methods, want, sizeof(want));
		if (r == NULL) {
			print_error("spec path %s (%s) has no route\n", spec[i].path, want);
			bad++;
		} else if ((r->methods & spec[i].methods) != spec[i].methods) {
			methods_str(r->methods, have, sizeof(have));
			print_error("spec path %s: the spec has %s, the router %s\n", spec[i].path,
				    want, have);
			bad++;
		}
	}
	if (bad > 0)
		fail_msg("%d spec path(s) without a route", bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pattern_spec_form),
	    cmocka_unit_test(test_spec_parses),
	    cmocka_unit_test(test_every_route_in_spec),
	    cmocka_unit_test(test_every_spec_path_routed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
