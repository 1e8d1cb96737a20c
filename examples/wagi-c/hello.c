/*
 * A WAGI (CGI over WASI preview 1) function in plain C: it prints a CGI header block, an empty
 * line, then a body listing its argv and environment, and how many request-body bytes it read
 * from stdin. See README.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
  static char buf[65536];
  long long body = 0;
  ssize_t n;
  while ((n = read(0, buf, sizeof buf)) > 0) body += n;

  printf("Content-Type: text/plain; charset=utf-8\n");
  printf("X-Body-Length: %lld\n", body);
  printf("\n");

  printf("hello from C on WAGI\n\n");
  for (int i = 0; i < argc; i++) printf("argv[%d] = %s\n", i, argv[i]);
  printf("\n");
  for (char **e = environ; *e != NULL; e++) printf("%s\n", *e);
  printf("\nread %lld body bytes from stdin\n", body);
  return 0;
}
