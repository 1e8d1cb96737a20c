/*
 * Test guest for src/sandbox/wagi/run.test.ts: one WASI command, behaviour chosen by argv[1].
 * Built by the test with clang --target=wasm32-wasi.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static void header(void) { fputs("Content-Type: text/plain\r\n\r\n", stdout); }

static void try_open(const char *path, const char *mode) {
  FILE *f = fopen(path, mode);
  if (f) {
    char line[128] = "";
    if (mode[0] == 'r' && fgets(line, sizeof line, f) == NULL) line[0] = 0;
    line[strcspn(line, "\n")] = 0;
    printf("open %s %s: ok %s\n", path, mode, line);
    fclose(f);
  } else {
    printf("open %s %s: %s\n", path, mode, strerror(errno));
  }
}

static void list(const char *path) {
  DIR *d = opendir(path);
  if (!d) { printf("list %s: %s\n", path, strerror(errno)); return; }
  printf("list %s:", path);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) printf(" %s", e->d_name);
  }
  printf("\n");
  closedir(d);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "env";
  if (!strcmp(mode, "env")) {
    header();
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    for (char **e = environ; *e; e++) printf("%s\n", *e);
  } else if (!strcmp(mode, "count")) {
    static char buf[65536];
    long long total = 0;
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) total += n;
    header();
    printf("%lld\n", total);
  } else if (!strcmp(mode, "big")) {
    static char buf[65536];
    long long want = argc > 2 ? atoll(argv[2]) : 0, done = 0;
    memset(buf, 'x', sizeof buf);
    header();
    fflush(stdout);
    while (done < want) {
      long long n = want - done < (long long)sizeof buf ? want - done : (long long)sizeof buf;
      ssize_t w = write(1, buf, (size_t)n);
      if (w <= 0) return 3;
      done += w;
    }
  } else if (!strcmp(mode, "exit1")) {
    header();
    printf("partial\n");
    fflush(stdout);
    exit(1);
  } else if (!strcmp(mode, "exit1-early")) {
    exit(1);
  } else if (!strcmp(mode, "trap")) {
    __builtin_trap();
  } else if (!strcmp(mode, "trap-after")) {
    header();
    printf("before the trap\n");
    fflush(stdout);
    __builtin_trap();
  } else if (!strcmp(mode, "stderr")) {
    fputs("to the log\n", stderr);
    header();
    printf("ok\n");
  } else if (!strcmp(mode, "grow")) {
    size_t n = argc > 2 ? (size_t)atoll(argv[2]) : 0;
    volatile char *p = malloc(n);
    long sum = 0;
    for (size_t i = 0; p && i < n; i += 4096) p[i] = 1;
    for (size_t i = 0; p && i < n; i += 4096) sum += p[i];
    header();
    printf("%s %ld\n", p ? "grown" : "malloc failed", sum);
  } else if (!strcmp(mode, "files")) {
    header();
    try_open("/data/a.txt", "r");
    try_open("/data/sub/b.txt", "r");
    try_open("/data/a.txt", "w");
    try_open("/data/a.txt", "a");
    try_open("/data/a.txt", "r+");
    try_open("/data/new.txt", "w");
    try_open("/data/link.txt", "r");
    try_open("/etc/passwd", "r");
    try_open("../../../../etc/passwd", "r");
    printf("mkdir /data/x: %s\n", mkdir("/data/x", 0755) ? strerror(errno) : "ok");
    printf("unlink /data/a.txt: %s\n", unlink("/data/a.txt") ? strerror(errno) : "ok");
    printf("rename: %s\n", rename("/data/a.txt", "/data/c.txt") ? strerror(errno) : "ok");
    list("/");
    list("/data");
    try_open("/data/a.txt", "r");
  } else {
    header();
    printf("unknown mode %s\n", mode);
    return 2;
  }
  return 0;
}
