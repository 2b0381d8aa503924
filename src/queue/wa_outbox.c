/*
 * wa_outbox.c - the producer side of the WhatsApp outbox (see whatsapp.h):
 * an outbound message and its outbox row are written by wa_enqueue() (SQL,
 * migration 0005) in the caller's transaction, with the caller's rights, so
 * the API's tenant scope applies; the NOTIFY 'outbox' it sends reaches the
 * workers at commit. The worker side is src/worker/outbox.c.
 */
#include <string.h>

#include "dialflow/err.h"
#include "dialflow/jsonutil.h"
#include "dialflow/log.h"
#include "dialflow/whatsapp.h"

static const db_stmt_t stmts[] = {
    {"wa_enqueue", "SELECT message_id, outbox_id FROM wa_enqueue($1::bigint, $2::bigint, "
		   "$3::jsonb, $4, $5::bigint)"},
};

void wa_outbox_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

json_t *wa_text_payload(arena_t *a, const char *text)
{
	return json_arena(a, json_pack("{s:s,s:{s:s,s:b}}", "type", "text", "text", "body",
				       text ? text : "", "preview_url", 0));
}

static bool sender_ok(const char *s)
{
	return s != NULL &&
	       (strcmp(s, "bot") == 0 || strcmp(s, "agent") == 0 || strcmp(s, "system") == 0);
}

/* The common body; agent_id 0 = none. */
static int enqueue(db_t *db, arena_t *a, int64_t business_id, int64_t contact_id,
		   const json_t *payload, const char *sender, int64_t agent_id, int64_t *message_id)
{
	const char *type = json_string_value(json_object_get(payload, "type"));
	const char *body;
	size_t len;
	PGresult *r;
	int rc = ERR_INVAL;

	if (message_id != NULL)
		*message_id = 0;
	if (business_id <= 0 || contact_id <= 0 || !sender_ok(sender) || !json_is_object(payload) ||
	    type == NULL || !json_is_object(json_object_get(payload, type)))
		goto out;
	body = json_dump_arena(a, payload, &len);
	r = DB_EXEC(db, a, &rc, "wa_enqueue", db_i64s(a, business_id), db_i64s(a, contact_id), body,
		    sender, agent_id > 0 ? db_i64s(a, agent_id) : NULL);
	if (r == NULL)
		goto out;
	if (PQntuples(r) != 1) {
		rc = ERR_NOTFOUND;
		goto out;
	}
	if (message_id != NULL)
		*message_id = db_i64(r, 0, 0);
	rc = 0;
out:
	if (rc < 0)
		log_info("whatsapp", "outbox enqueue business=%lld contact=%lld refused: %s",
			 (long long)business_id, (long long)contact_id, err_code_name(rc));
	return rc;
}

int wa_outbox_enqueue(db_t *db, arena_t *a, int64_t business_id, int64_t contact_id,
		      const json_t *payload, const char *sender, int64_t *message_id)
{
	return enqueue(db, a, business_id, contact_id, payload, sender, 0, message_id);
}

int wa_outbox_enqueue_agent(db_t *db, arena_t *a, int64_t business_id, int64_t contact_id,
			    const json_t *payload, int64_t agent_id, int64_t *message_id)
{
	return enqueue(db, a, business_id, contact_id, payload, "agent", agent_id, message_id);
}
