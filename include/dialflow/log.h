/*
 * log.h - one line per event: `ts level component key=value... msg`.
 *
 * Lines go to stderr (spawn-fcgi, the worker and the CLI all redirect it to
 * their log file). Operators grep for the tags LOG_TAG_SECURITY and friends.
 * Never pass tokens, secrets or message bodies; mask phone numbers with
 * log_mask_phone().
 */
#ifndef DIALFLOW_LOG_H
#define DIALFLOW_LOG_H

#include <stddef.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

#define LOG_TAG_SECURITY     "[SECURITY]"
#define LOG_TAG_AUDIT	     "[AUDIT]"
#define LOG_TAG_FORCE_CANCEL "[FORCE_CANCEL]"
#define LOG_TAG_STALE	     "[STALE_DETECTION]"

extern log_level_t log_min_level;

/* Set the minimum level from a name ("debug", "info", "warn", "error"); returns -1 on an unknown
 * name. */
int log_set_level(const char *name);
/*
 * Send log lines to `path` (opened for append, created 0640) instead of the
 * inherited stderr; spawn-fcgi points its children's stderr at /dev/null.
 * Returns 0, or -1 leaving stderr as it was.
 */
int log_open_file(const char *path);
/* Set the process-wide prefix fields, e.g. "pid=123". */
void log_set_process(const char *proc);

/* Emit one line. `component` is a short word ("http", "db", "worker"). Cheap when below the level.
 */
#define log_msg(level, component, ...)                                                             \
	do {                                                                                       \
		if ((level) >= log_min_level)                                                      \
			log_write((level), (component), __VA_ARGS__);                              \
	} while (0)
#define log_debug(c, ...) log_msg(LOG_DEBUG, c, __VA_ARGS__)
#define log_info(c, ...)  log_msg(LOG_INFO, c, __VA_ARGS__)
#define log_warn(c, ...)  log_msg(LOG_WARN, c, __VA_ARGS__)
#define log_error(c, ...) log_msg(LOG_ERROR, c, __VA_ARGS__)

void log_write(log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Mask a phone number for logs: keep the first 6 and the last 4 characters
 * (`+97250***4567`). Short inputs are masked whole. Writes into out (size outsz).
 */
const char *log_mask_phone(const char *phone, char *out, size_t outsz);

/*
 * Copy `in` into out, replacing control characters, double quotes and
 * backslashes with '_', so a value from outside (logged as key="value") can
 * never forge a line or a field. Truncates to outsz-1.
 */
const char *log_sanitize(const char *in, char *out, size_t outsz);

#endif
