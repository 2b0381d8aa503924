/* testutil.h - what every cmocka test includes, in the order cmocka needs. */
#ifndef DIALFLOW_TESTUTIL_H
#define DIALFLOW_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#endif
