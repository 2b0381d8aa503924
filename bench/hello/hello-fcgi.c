/*
 * hello-fcgi - the FastCGI ceiling for bench/api: the smallest libfcgi
 * responder that answers a fixed JSON body, behind the same nginx.
 */
#include <fcgiapp.h>
#include <string.h>

int main(void)
{
	static const char body[] = "{\"hello\":\"world\"}";
	FCGX_Request r;

	FCGX_Init();
	FCGX_InitRequest(&r, 0, 0);
	while (FCGX_Accept_r(&r) >= 0) {
		FCGX_FPrintF(r.out,
			     "Status: 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
			     "Cache-Control: no-store\r\nContent-Length: %d\r\n\r\n",
			     (int)strlen(body));
		FCGX_PutStr(body, (int)strlen(body), r.out);
		FCGX_Finish_r(&r);
	}
	return 0;
}
