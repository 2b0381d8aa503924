/*
 * log.c - one line per event on stderr: `ts level component msg`.
 * The line is formatted into a buffer and written with one write(2), so
 * lines of concurrent processes sharing the file never interleave.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dialflow/log.h"

log_level_t log_min_level = LOG_INFO;
static char log_proc[64] = "";

static const char *level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int log_set_level(const char *name)
{
	static const char *names[] = {"debug", "info", "warn", "error"};

	for (int i = 0; i < 4; i++) {
		if (name != NULL && strcmp(name, names[i]) == 0) {
			log_min_level = (log_level_t)i;
			return 0;
		}
	}
	return -1;
}

int log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return -1;
	if (dup2(fd, STDERR_FILENO) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void log_set_process(const char *proc)
{
	snprintf(log_proc, sizeof(log_proc), "%s", proc ? proc : "");
}

void log_write(log_level_t level, const char *component, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s%s%s ", ts.tv_nsec / 1000000L,
		     level_names[level], component, log_proc[0] ? " " : "", log_proc);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
	/* Replace any newline a message smuggled in, then terminate the line. */
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* Nowhere left to report it. */
	}
}

const char *log_mask_phone(const char *phone, char *out, size_t outsz)
{
	size_t len;

	if (outsz == 0)
		return out;
	if (phone == NULL) {
		snprintf(out, outsz, "-");
		return out;
	}
	len = strlen(phone);
	if (len < 11) {
		snprintf(out, outsz, "***");
		return out;
	}
	snprintf(out, outsz, "%.6s***%s", phone, phone + len - 4);
	return out;
}

const char *log_sanitize(const char *in, char *out, size_t outsz)
{
	size_t j = 0;

	if (outsz == 0)
		return out;
	for (size_t i = 0; in != NULL && in[i] != '\0' && j + 1 < outsz; i++) {
		unsigned char c = (unsigned char)in[i];

		out[j++] = (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? '_' : (char)c;
	}
	out[j] = '\0';
	return out;
}
