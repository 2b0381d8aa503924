/* provider.c - what every telephony provider shares (see provider.h). */
#include <stddef.h>

#include "dialflow/provider.h"

void provider_free(provider_t *p)
{
	if (p != NULL && p->ops != NULL && p->ops->free != NULL)
		p->ops->free(p);
}
