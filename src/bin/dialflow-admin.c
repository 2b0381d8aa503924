/* dialflow-admin - the command line (see cli.h). */
#include "dialflow/cli.h"

int main(int argc, char **argv)
{
	return admin_cli_main(argc, argv);
}
