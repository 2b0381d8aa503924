/*
 * routes.c - the outbound-calls endpoints (API.md "Outbound calls"), all on
 * page calls_outbound, and the module's statement registration.
 */
#include "dialflow/api.h"
#include "dialflow/outbound.h"

const http_route_t outbound_routes[] = {
    {0, "/api/outbound_calls/-", NULL, {GUARD_USER, 0, NULL}, 0},
};
const size_t outbound_nroutes = 0;

void outbound_register(void)
{
}
