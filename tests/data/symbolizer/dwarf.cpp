// Seed for the ELF fuzz target with DWARF: inlined callees, a lambda inlined into a
// template, an anonymous-namespace function (no linkage name in gcc's DWARF).
namespace {
__attribute__((noinline)) int helper(int x) {
    return x * 3 + 1;
}
} // namespace

static inline int twice(int x) {
    return helper(x) + helper(x + 1);
}

template <typename F>
__attribute__((noinline)) int apply(F f, int v) {
    return f(v) + f(v + 2);
}

int run(int v) {
    auto l = [](int x) { return twice(x) - 2; };
    return apply(l, v) + twice(v);
}

int main(int argc, char**) {
    return run(argc);
}
