// Floating-point loops: a small gravitational n-body simulation (symplectic Euler steps).
#include <math.h>
#include <stdio.h>

#define N 5
typedef struct { double x, y, z, vx, vy, vz, m; } Body;

static void step(Body *b, double dt) {
  for (int i = 0; i < N; i++) {
    for (int j = i + 1; j < N; j++) {
      double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
      double d2 = dx * dx + dy * dy + dz * dz;
      double mag = dt / (d2 * sqrt(d2));
      b[i].vx -= dx * b[j].m * mag; b[i].vy -= dy * b[j].m * mag; b[i].vz -= dz * b[j].m * mag;
      b[j].vx += dx * b[i].m * mag; b[j].vy += dy * b[i].m * mag; b[j].vz += dz * b[i].m * mag;
    }
  }
  for (int i = 0; i < N; i++) { b[i].x += dt * b[i].vx; b[i].y += dt * b[i].vy; b[i].z += dt * b[i].vz; }
}

static double energy(const Body *b) {
  double e = 0;
  for (int i = 0; i < N; i++) {
    e += 0.5 * b[i].m * (b[i].vx * b[i].vx + b[i].vy * b[i].vy + b[i].vz * b[i].vz);
    for (int j = i + 1; j < N; j++) {
      double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
      e -= b[i].m * b[j].m / sqrt(dx * dx + dy * dy + dz * dz);
    }
  }
  return e;
}

int main(void) {
  // A heavy central mass and four lighter ones on rough circular orbits (arbitrary units).
  Body b[N] = {
    {0, 0, 0, 0, 0, 0, 40},
    {5, 0, 0, 0, 2.8, 0.1, 0.04},
    {0, 9, 0.5, -2.1, 0, 0, 0.012},
    {-14, 0, 0, 0, -1.7, 0.05, 0.002},
    {0, -20, -1, 1.4, 0, 0, 0.003},
  };
  double e0 = energy(b);
  for (int i = 0; i < 2000000; i++) step(b, 0.0005);
  printf("nbody %.9f %.9f\n", e0, energy(b));
  return 0;
}
