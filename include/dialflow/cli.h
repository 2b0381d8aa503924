/*
 * cli.h - dialflow-admin: migrate, business/user/pages administration,
 * token issue, seed-demo. Connects as the owner role (DIALFLOW_DATABASE_URL)
 * and therefore acts across tenants; every change it makes is audited.
 */
#ifndef DIALFLOW_CLI_H
#define DIALFLOW_CLI_H

/* Run one command; returns the process exit status (0 ok, 1 failure, 2 usage). */
int admin_cli_main(int argc, char **argv);

#endif
