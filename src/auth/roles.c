/* roles.c - the role ladder and the page registry. */
#include <string.h>

#include "dialflow/auth.h"

static const char *role_names[] = {"", "agent", "admin", "owner", "system_admin"};

auth_role_t auth_role_parse(const char *name)
{
	for (int r = ROLE_AGENT; name != NULL && r <= ROLE_SYSTEM_ADMIN; r++)
		if (strcmp(name, role_names[r]) == 0)
			return (auth_role_t)r;
	return ROLE_NONE;
}

const char *auth_role_name(auth_role_t r)
{
	if (r < ROLE_AGENT || r > ROLE_SYSTEM_ADMIN)
		return "none";
	return role_names[r];
}

/* Add pages here; a business enables them by key (PATCH .../pages). */
const auth_page_t auth_pages[] = {
    {"calls_outbound", ROLE_AGENT, "Outbound calls"},
    {"whatsapp_flows", ROLE_AGENT, "WhatsApp flows"},
    {"contacts", ROLE_AGENT, "WhatsApp contacts"},
    {"settings", ROLE_OWNER, "Settings and audit"},
    {NULL, ROLE_NONE, NULL},
};

const auth_page_t *auth_page_find(const char *key)
{
	for (const auth_page_t *p = auth_pages; key != NULL && p->key != NULL; p++)
		if (strcmp(p->key, key) == 0)
			return p;
	return NULL;
}

bool auth_has_page(const auth_principal_t *p, const char *key)
{
	for (size_t i = 0; i < p->npages; i++)
		if (strcmp(p->pages[i], key) == 0)
			return true;
	return false;
}
