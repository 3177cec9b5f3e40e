// The program that owns the test executables' shared precompiled header (tests/CMakeLists.txt,
// coupond_test_pch): CMake precompiles a header for a target that compiles at least one source,
// and the tests reuse it from here. Never run.
int main() { return 0; }
