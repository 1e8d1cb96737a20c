// Call-heavy: naive recursive Fibonacci (two calls per step, tiny bodies).
#include <stdio.h>

__attribute__((noinline)) static unsigned fib(unsigned n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

int main(void) {
  unsigned total = 0;
  for (unsigned i = 0; i < 4; i++) total += fib(32 + i % 2);
  printf("fib %u\n", total);
  return 0;
}
