/*
 * err.h - the error taxonomy shared by every module.
 *
 * Functions return 0 on success or one of these negative codes. The HTTP
 * status a code maps to is decided in exactly one place, err_http_status().
 */
#ifndef DIALFLOW_ERR_H
#define DIALFLOW_ERR_H

enum {
	ERR_OK = 0,
	ERR_INVAL = -1,	    /* bad input: 400                              */
	ERR_NOTFOUND = -2,  /* 404                                         */
	ERR_CONFLICT = -3,  /* unique/foreign key conflict: 409            */
	ERR_UNAVAIL = -4,   /* database down, timeout: 503 + Retry-After   */
	ERR_RETRY = -5,	    /* serialization failure / deadlock: retry     */
	ERR_INTERNAL = -6,  /* anything else: 500, never with details      */
	ERR_FORBIDDEN = -7, /* 403                                         */
	ERR_AUTH = -8,	    /* 401                                         */
};

/* The HTTP status for an error code (500 for unknown codes). */
int err_http_status(int err);
/* A stable machine-readable code ("db_unavailable", ...) for an error code. */
const char *err_code_name(int err);

#endif
