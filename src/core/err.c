/* err.c - the single mapping from ERR_* codes to HTTP. */
#include "dialflow/err.h"

int err_http_status(int err)
{
	switch (err) {
	case ERR_OK:
		return 200;
	case ERR_INVAL:
		return 400;
	case ERR_AUTH:
		return 401;
	case ERR_FORBIDDEN:
		return 403;
	case ERR_NOTFOUND:
		return 404;
	case ERR_CONFLICT:
		return 409;
	case ERR_UNAVAIL:
	case ERR_RETRY:
		return 503;
	default:
		return 500;
	}
}

const char *err_code_name(int err)
{
	switch (err) {
	case ERR_INVAL:
		return "invalid_input";
	case ERR_AUTH:
		return "unauthenticated";
	case ERR_FORBIDDEN:
		return "forbidden";
	case ERR_NOTFOUND:
		return "not_found";
	case ERR_CONFLICT:
		return "conflict";
	case ERR_UNAVAIL:
	case ERR_RETRY:
		return "db_unavailable";
	default:
		return "internal_error";
	}
}
