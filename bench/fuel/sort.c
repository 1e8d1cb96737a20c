// Branchy memory-bound code: quicksort (insertion sort for small ranges) of pseudo-random ints.
#include <stdint.h>
#include <stdio.h>

#define COUNT 600000
static int32_t a[COUNT];

static void insertion(int32_t *v, int n) {
  for (int i = 1; i < n; i++) {
    int32_t x = v[i];
    int j = i - 1;
    while (j >= 0 && v[j] > x) { v[j + 1] = v[j]; j--; }
    v[j + 1] = x;
  }
}

static void quicksort(int32_t *v, int n) {
  while (n > 16) {
    int32_t p = v[n / 2];
    int i = 0, j = n - 1;
    while (i <= j) {
      while (v[i] < p) i++;
      while (v[j] > p) j--;
      if (i <= j) { int32_t t = v[i]; v[i] = v[j]; v[j] = t; i++; j--; }
    }
    // Recurse into the smaller half, loop on the larger.
    if (j + 1 < n - i) { quicksort(v, j + 1); v += i; n -= i; }
    else { quicksort(v + i, n - i); n = j + 1; }
  }
  insertion(v, n);
}

int main(void) {
  uint32_t x = 2463534242u, sum = 0;
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < COUNT; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; a[i] = (int32_t)(x % 1000000007u); }
    quicksort(a, COUNT);
    for (int i = 1; i < COUNT; i++) if (a[i - 1] > a[i]) { printf("not sorted\n"); return 1; }
    sum = sum * 31 + (uint32_t)a[COUNT / 2] + (uint32_t)a[17];
  }
  printf("sort %u\n", sum);
  return 0;
}
