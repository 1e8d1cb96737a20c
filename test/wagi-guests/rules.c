/*
 * Test guest for test/wagi.test.ts: the CGI response rules (RFC 3875 §6). argv[1] picks what it
 * writes to stdout.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  const char *m = argc > 1 ? argv[1] : "";
  if (!strcmp(m, "lf")) fputs("Content-Type: text/x-lf\nX-Style: lf\n\nbody-lf\n", stdout);
  else if (!strcmp(m, "crlf")) fputs("Content-Type: text/x-crlf\r\nX-Style: crlf\r\n\r\nbody-crlf\r\n", stdout);
  else if (!strcmp(m, "status404")) fputs("Status: 404 Not Found\nContent-Type: text/plain\n\nnothing here\n", stdout);
  else if (!strcmp(m, "location")) fputs("Location: https://example.com/elsewhere\n\n", stdout);
  else if (!strcmp(m, "noheader")) fputs("just a body, no header block\n", stdout);
  else if (!strcmp(m, "badstatus")) fputs("Status: 99 Nope\n\n", stdout);
  else if (!strcmp(m, "cookies")) fputs("Content-Type: text/plain\nSet-Cookie: a=1\nSet-Cookie: b=2\n\nok\n", stdout);
  else if (!strcmp(m, "length")) fputs("Content-Type: text/plain\nContent-Length: 3\n\nabc", stdout);
  else if (!strcmp(m, "overlength")) fputs("Content-Type: text/plain\nContent-Length: 3\n\nabcdef", stdout);
  else if (!strcmp(m, "shortlength")) fputs("Content-Type: text/plain\nContent-Length: 30\n\nabc", stdout);
  else fputs("Content-Type: text/plain\n\nunknown\n", stdout);
  return 0;
}
