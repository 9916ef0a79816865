// edi-anon: the thin executable. Everything lives in the library; see edi/cli/cli.hpp.
#include "edi/cli/cli.hpp"

int main(int argc, char** argv) { return edi::cli::run_cli(argc, argv); }
