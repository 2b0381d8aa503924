/*
 * routes.c - provider webhooks: public routes, each authenticated by its
 * provider's signature inside the handler, and the module's statements.
 */
#include "dialflow/api.h"
#include "dialflow/outbound.h"

const http_route_t webhook_routes[] = {
    {0, "/webhooks/-", NULL, {GUARD_PUBLIC, 0, NULL}, 0},
};
const size_t webhook_nroutes = 0;

void webhooks_register(void)
{
}
