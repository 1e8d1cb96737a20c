/*
 * Test guest for test/wagi.test.ts: writes its header block and a first line, sleeps 300 ms
 * (nanosleep → poll_oneoff on a clock), then a second line: the first must reach the client
 * before the sleep ends (streaming), and the sleep must not trap.
 */
#include <stdio.h>
#include <time.h>

int main(void) {
  fputs("Content-Type: text/plain\n\nbefore\n", stdout);
  fflush(stdout);
  struct timespec ts = { 0, 300 * 1000 * 1000 };
  nanosleep(&ts, NULL);
  fputs("after\n", stdout);
  return 0;
}
