#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <chrono>
#include <ctime>
#include "verilated.h"
#include TOPH
static uint64_t s = 88172645463325252ull;
static inline uint32_t rnd() { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return (uint32_t)s; }
template <typename T> static void setr(T& x, int bits) { uint64_t v = ((uint64_t)rnd() << 32) | rnd(); if (bits < 64) v &= (1ull << bits) - 1; x = (T)v; }
template <std::size_t N> static void setr(VlWide<N>& x, int bits) { for (std::size_t w = 0; w < N; ++w) { int b = bits - 32 * (int)w; uint32_t v = rnd(); if (b < 32) v &= (b <= 0) ? 0 : ((1u << b) - 1); x[w] = v; } }
template <typename T> static bool eq(const T& a, const T& b) { return a == b; }
template <std::size_t N> static bool eq(const VlWide<N>& a, const VlWide<N>& b) { for (std::size_t w = 0; w < N; ++w) if (a[w] != b[w]) return false; return true; }
int main(int argc, char** argv) {
    long n = atol(argv[1]);
    VerilatedContext ctx; VTOPCLS* t = new VTOPCLS(&ctx);
    long mism = 0, lasts = 0;
    auto t0 = std::chrono::steady_clock::now(); std::clock_t c0 = std::clock();
    for (long c = 0; c < n; ++c) {
        t->rst = c < 4; uint32_t r = rnd();
        t->in_valid = (r & 7) != 0; t->in_last = t->in_valid && ((r >> 3) & 15) == 0; lasts += t->in_last;
        setr(t->a_in, AB); setr(t->b_in, BB); setr(t->col_sel, CB);
        t->clk = 0; t->eval(); t->clk = 1; t->eval();
#ifdef EQ
        if (!eq(t->d_old, t->d_new)) { if (mism < 5) printf("mismatch at cycle %ld\n", c); ++mism; }
        setr(t->col_sel, CB); t->eval();
        if (!eq(t->d_old, t->d_new)) { if (mism < 5) printf("mismatch (comb) at cycle %ld\n", c); ++mism; }
#endif
    }
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC; printf("cycles=%ld mism=%ld sec=%.3f cycles_per_s=%.0f cycles_per_cpu_s=%.0f\n", n, mism, sec, n / sec, n / cpu);
    delete t; return mism != 0;
}
