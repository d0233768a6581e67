int base_function(int x) { return x * 2; }
int main(void) { return base_function(1); }
